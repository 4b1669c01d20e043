/**
 * Fixed-window counters for rate limits: each key may spend `limit` units per window of `windowSeconds`;
 * the window starts with the first request that counts and ends `windowSeconds` later. Pure: the clock is
 * a parameter, so the Durable Object that keeps one counter per key is a thin shell over `spend`.
 */

export type RatePolicy = {
  /** The policy's name in the `RateLimit` and `RateLimit-Policy` headers, e.g. `"principal"`. */
  name: string;
  /** Units per window; 0 turns the policy off. */
  limit: number;
  windowSeconds: number;
};

export type WindowState = { start: number; used: number };

export type RateDecision = {
  allowed: boolean;
  /** Units left in this window after this request. */
  remaining: number;
  /** Whole seconds until the window ends (at least 1 while a window is open). */
  resetSeconds: number;
};

/**
 * Spends `cost` units at `now` (epoch milliseconds); a cost of 0 only looks. A request that does not fit
 * spends nothing and is refused until the window ends. A cost of 0 is refused once nothing is left.
 */
export function spend(
  state: WindowState | undefined,
  policy: Pick<RatePolicy, "limit" | "windowSeconds">,
  cost: number,
  now: number,
): { state: WindowState | undefined; decision: RateDecision } {
  const windowMs = policy.windowSeconds * 1000;
  const open = state && now < state.start + windowMs ? state : undefined;
  if (!open && cost === 0) {
    return {
      state: undefined,
      decision: { allowed: policy.limit > 0, remaining: policy.limit, resetSeconds: policy.windowSeconds },
    };
  }
  const current = open ?? { start: now, used: 0 };
  const resetSeconds = Math.max(1, Math.ceil((current.start + windowMs - now) / 1000));
  const left = policy.limit - current.used;
  const allowed = cost === 0 ? left > 0 : cost <= left;
  const next = allowed && cost > 0 ? { start: current.start, used: current.used + cost } : current;
  return { state: next, decision: { allowed, remaining: Math.max(0, policy.limit - next.used), resetSeconds } };
}

/** The decision a client should see first: the one with the least left, then the longest wait. */
export function mostRestrictive<T extends { decision: RateDecision }>(checks: readonly T[]): T | undefined {
  let worst: T | undefined;
  for (const check of checks) {
    const d = check.decision;
    if (
      !worst ||
      (!d.allowed && worst.decision.allowed) ||
      (d.allowed === worst.decision.allowed &&
        (d.remaining < worst.decision.remaining ||
          (d.remaining === worst.decision.remaining && d.resetSeconds > worst.decision.resetSeconds)))
    ) {
      worst = check;
    }
  }
  return worst;
}

/** `RateLimit-Policy`: every policy that applies, e.g. `"tenant";q=600;w=60, "principal";q=300;w=60`. */
export function policyHeader(policies: readonly RatePolicy[]): string {
  return policies.map((p) => `"${p.name}";q=${p.limit};w=${p.windowSeconds}`).join(", ");
}

/** `RateLimit`: the most restrictive policy's state, e.g. `"principal";r=299;t=60`. */
export function limitHeader(policy: RatePolicy, decision: RateDecision): string {
  return `"${policy.name}";r=${decision.remaining};t=${decision.resetSeconds}`;
}
