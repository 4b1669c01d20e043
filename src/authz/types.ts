/** Shapes shared by the grant-evaluation engine and its callers. */

export type Effect = "allow" | "deny" | "ask";

export interface GrantRule {
  id: string;
  /** Pattern, e.g. "agent:*", "instance:ins_123", "*". */
  resource: string;
  /** Pattern, e.g. "read", "*". */
  action: string;
  effect: Effect;
  /** null or {} = unconditional. */
  conditions: Record<string, unknown> | null;
  /** Epoch ms; a grant with expiresAt <= now is ignored. */
  expiresAt: number | null;
  origin?: string;
}

export interface RequestContext {
  /** Epoch ms. */
  now: number;
  principalId: string;
  tenantId: string;
  /** Filled by evaluate before conditions see the context. */
  resource?: string;
  action?: string;
  /** Client IP (CF-Connecting-IP), if known. */
  ip?: string | null;
  /** Decimal string: amount the principal spent today (UTC day), if known. */
  spentToday?: string | null;
  /** Decimal string: cost of the action being authorized, if known. */
  cost?: string | null;
}

export interface ConditionEvaluator {
  /** null when the value is well-formed, else a human message (used to reject grant creation with 400). */
  validate(value: unknown): string | null;
  /**
   * true when the condition holds; "ask" when it holds only with a person's approval (the grant then asks
   * instead of allowing). Must not throw; the engine also guards against throws.
   */
  evaluate(value: unknown, ctx: RequestContext): boolean | "ask";
}

export type ConditionRegistry = ReadonlyMap<string, ConditionEvaluator>;

/**
 * - "none": no conditions;
 * - "met": every condition holds;
 * - "ask": every condition holds, some only with approval (an allow grant asks instead);
 * - "unmet": some condition does not hold, or conditions cannot be evaluated (no registry) on a non-deny grant;
 * - "invalid": unknown key, malformed value, throwing evaluator, or no registry on a deny grant.
 */
export type ConditionOutcome = "none" | "met" | "ask" | "unmet" | "invalid";

export interface MatchedGrant {
  grant: GrantRule;
  specificity: number;
  conditions: ConditionOutcome;
  /** effect this grant contributes: its own, or "deny" when conditions are invalid; null when unmet (not counted) */
  effective: Effect | null;
}

export interface Decision {
  /** The winner's effective effect (so "deny" when its conditions were invalid); null when nothing matched. */
  effect: Effect | null;
  allowed: boolean;
  winner: GrantRule | null;
  specificity: number | null;
}

export interface Explanation extends Decision {
  matching: MatchedGrant[];
}
