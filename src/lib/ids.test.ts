import { describe, expect, it } from "vitest";
import { isId, newId } from "./ids";

describe("newId", () => {
  it("uses the kind's prefix and 32 lowercase hex digits", () => {
    expect(newId("tenant")).toMatch(/^tnt_[0-9a-f]{32}$/);
    expect(newId("turnPart")).toMatch(/^tp_[0-9a-f]{32}$/);
    expect(newId("sessionMail")).toMatch(/^sml_[0-9a-f]{32}$/);
  });

  it("does not repeat", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId("grant")));
    expect(ids.size).toBe(10_000);
  });

  it("recognises its own ids and nothing else", () => {
    expect(isId("role", newId("role"))).toBe(true);
    expect(isId("role", newId("grant"))).toBe(false);
    expect(isId("role", "rol_XYZ")).toBe(false);
    expect(isId("role", `rol_${"A".repeat(32)}`)).toBe(false);
  });
});
