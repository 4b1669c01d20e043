import { DurableObject } from "cloudflare:workers";
import { type RateDecision, type RatePolicy, spend, type WindowState } from "../src/lib/rate-limit";

/**
 * One object per rate-limit key (`tenant:<id>`, `principal:<id>`, `address:<ip>`, …), so every isolate
 * counts against the same window. The count lives in memory: an object runs one request at a time, and
 * an object that is evicted forgets a window at most a minute old, which only errs towards allowing.
 */
export class RateLimiterObject extends DurableObject<Env> {
  private window: WindowState | undefined;

  /** Spends `cost` units of the key's window under `policy` (0 only looks); see `spend`. */
  async spend(policy: Pick<RatePolicy, "limit" | "windowSeconds">, cost: number): Promise<RateDecision> {
    const { state, decision } = spend(this.window, policy, cost, Date.now());
    this.window = state;
    return decision;
  }
}
