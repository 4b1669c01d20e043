import { describe, expect, it } from "vitest";
import type { GrantRule } from "../authz/types";
import { delegateGrants } from "./launch";

const now = new Date("2026-11-25T12:00:00Z");
const rule = (resource: string, action: string, extra: Partial<GrantRule> = {}): GrantRule => ({
  id: `g-${resource}-${action}`,
  resource,
  action,
  effect: "allow",
  conditions: null,
  expiresAt: null,
  origin: "role",
  ...extra,
});
const base = { now, tenantId: "tnt_1", invokerPrincipalId: "prn_inv", creatorPrincipalId: "prn_cre" };

describe("launch-time delegation", () => {
  it("materializes what the creator and the invoker hold, with the invoker's grants expiring in 24 h", () => {
    const out = delegateGrants({
      ...base,
      requirements: [
        { resource: "tool:search", action: "write", source: "creator" },
        { resource: "wallet:w1", action: "write", effect: "ask", source: "invoker" },
      ],
      invokerGrants: [{ resource: "instance:*", action: "read" }],
      creatorGrants: [rule("tool:*", "write")],
      invokerRules: [rule("wallet:*", "write"), rule("*", "read")],
    });
    expect(out).toEqual([
      {
        resource: "tool:search",
        action: "write",
        effect: "allow",
        conditions: null,
        origin: "creator",
        expiresAt: null,
      },
      {
        resource: "wallet:w1",
        action: "write",
        effect: "ask",
        conditions: null,
        origin: "invoker",
        expiresAt: new Date(now.getTime() + 24 * 3600 * 1000),
      },
      {
        resource: "instance:*",
        action: "read",
        effect: "allow",
        conditions: null,
        origin: "invoker",
        expiresAt: new Date(now.getTime() + 24 * 3600 * 1000),
      },
    ]);
  });

  it("refuses what the source does not hold, and conditional or re-delegated grants", () => {
    const refuse = (input: Partial<Parameters<typeof delegateGrants>[0]>, message: RegExp) =>
      expect(() =>
        delegateGrants({ ...base, requirements: [], invokerGrants: [], creatorGrants: [], invokerRules: [], ...input }),
      ).toThrow(message);
    refuse({ requirements: [{ resource: "tool:x", action: "write", source: "creator" }] }, /Creator lacks authority/);
    refuse(
      {
        requirements: [{ resource: "tool:x", action: "write", source: "creator" }],
        creatorGrants: [rule("tool:x", "write", { conditions: { time_window: { after: "00:00", before: "23:59" } } })],
      },
      /Creator lacks authority/,
    );
    refuse(
      {
        invokerGrants: [{ resource: "wallet:w1", action: "write" }],
        invokerRules: [rule("wallet:w1", "write", { origin: "invoker" })],
      },
      /Invoker lacks authority/,
    );
    refuse(
      {
        invokerGrants: [{ resource: "x:1", action: "manage" }],
        invokerRules: [rule("x:1", "manage", { effect: "deny" })],
      },
      /Invoker lacks/,
    );
    refuse(
      { requirements: [{ resource: "x", action: "read", source: "somebody" as "creator" }] },
      /Unknown grant requirement source/,
    );
  });
});
