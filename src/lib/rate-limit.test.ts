/** The fixed-window counter and the header values, on a clock the test moves. */
import { describe, expect, it } from "vitest";
import { limitHeader, mostRestrictive, policyHeader, type RateDecision, spend, type WindowState } from "./rate-limit";

const policy = { name: "principal", limit: 3, windowSeconds: 60 };

/** Spends `cost` at each time, threading the state; returns every decision. */
function run(times: number[], cost = 1, start?: WindowState) {
  let state = start;
  return times.map((now) => {
    const out = spend(state, policy, cost, now);
    state = out.state;
    return out.decision;
  });
}

describe("spend", () => {
  it("allows the limit within a window with decreasing remaining, then refuses until it ends", () => {
    const decisions = run([0, 1_000, 2_000, 30_000, 59_999]);
    expect(decisions.map((d) => [d.allowed, d.remaining, d.resetSeconds])).toEqual([
      [true, 2, 60],
      [true, 1, 59],
      [true, 0, 58],
      [false, 0, 30],
      [false, 0, 1],
    ]);
  });

  it("opens a new window once the old one has passed", () => {
    const [, , , , again] = run([0, 1, 2, 3, 60_000]);
    expect(again).toEqual({ allowed: true, remaining: 2, resetSeconds: 60 });
  });

  it("a refused request spends nothing; a cost of 0 only looks", () => {
    const spent = spend(undefined, policy, 2, 0);
    expect(spent.decision).toMatchObject({ allowed: true, remaining: 1 });
    const tooMuch = spend(spent.state, policy, 2, 1);
    expect(tooMuch.decision).toMatchObject({ allowed: false, remaining: 1 });
    const look = spend(tooMuch.state, policy, 0, 2);
    expect(look.decision).toMatchObject({ allowed: true, remaining: 1 });
    expect(look.state).toEqual({ start: 0, used: 2 });
    const last = spend(look.state, policy, 1, 3);
    expect(spend(last.state, policy, 0, 4).decision).toMatchObject({ allowed: false, remaining: 0 });
    expect(spend(undefined, policy, 0, 4)).toEqual({
      state: undefined,
      decision: { allowed: true, remaining: 3, resetSeconds: 60 },
    });
  });
});

describe("headers", () => {
  const d = (allowed: boolean, remaining: number, resetSeconds: number): { decision: RateDecision } => ({
    decision: { allowed, remaining, resetSeconds },
  });

  it("picks the refused, then the least remaining, then the longest wait", () => {
    expect(mostRestrictive([d(true, 5, 10), d(true, 2, 10), d(true, 2, 30)])).toEqual(d(true, 2, 30));
    expect(mostRestrictive([d(true, 0, 10), d(false, 1, 5)])).toEqual(d(false, 1, 5));
    expect(mostRestrictive([])).toBeUndefined();
  });

  it("writes the structured-field forms", () => {
    const tenant = { name: "tenant", limit: 600, windowSeconds: 60 };
    expect(policyHeader([tenant, policy])).toBe('"tenant";q=600;w=60, "principal";q=3;w=60');
    expect(limitHeader(policy, { allowed: true, remaining: 2, resetSeconds: 59 })).toBe('"principal";r=2;t=59');
  });
});
