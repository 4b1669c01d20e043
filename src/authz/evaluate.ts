/**
 * Grant evaluation: among unexpired grants whose resource and action patterns match, the most specific
 * counted grant wins; on equal specificity deny beats ask beats allow. Conditions fail closed: unmet
 * conditions drop the grant, and conditions that cannot be evaluated (unknown key, malformed value, throwing
 * evaluator) turn the grant into a deny, so a broken rule can block but never grant.
 */
import { isPlainObject, safeValidate } from "./conditions";
import { grantSpecificity, matchPattern } from "./pattern";
import type {
  ConditionEvaluator,
  ConditionOutcome,
  ConditionRegistry,
  Decision,
  Effect,
  Explanation,
  GrantRule,
  MatchedGrant,
  RequestContext,
} from "./types";

const PRIORITY: Readonly<Record<Effect, number>> = { allow: 0, ask: 1, deny: 2 };

/** Unexpired at `now` (expiresAt == now is expired) and both patterns match. */
function applies(grant: GrantRule, resource: string, action: string, now: number): boolean {
  if (grant.expiresAt !== null && grant.expiresAt <= now) return false;
  return matchPattern(grant.resource, resource) && matchPattern(grant.action, action);
}

function hasConditions(conditions: unknown): boolean {
  if (conditions === null || conditions === undefined) return false;
  if (!isPlainObject(conditions)) return true;
  for (const key in conditions) {
    if (Object.hasOwn(conditions, key)) return true;
  }
  return false;
}

/**
 * How a grant's conditions fare for this request. `ctx` must already carry resource and action.
 * Without a registry nothing can be checked, so the grant is resolved against the caller: an allow or ask
 * does not count, while a deny still does (it is reported "invalid", which counts as deny).
 */
function conditionOutcome(grant: GrantRule, ctx: RequestContext, registry?: ConditionRegistry): ConditionOutcome {
  const { conditions } = grant;
  if (!hasConditions(conditions)) return "none";
  if (!registry) return grant.effect === "deny" ? "invalid" : "unmet";
  if (!isPlainObject(conditions)) return "invalid";
  const checks: [ConditionEvaluator, unknown][] = [];
  for (const [key, value] of Object.entries(conditions)) {
    const evaluator = registry.get(key);
    if (!evaluator || safeValidate(evaluator, value) !== null) return "invalid";
    checks.push([evaluator, value]);
  }
  return runChecks(checks, ctx);
}

/** Every check runs, so that a throw anywhere yields "invalid" whatever the key order. */
function runChecks(checks: readonly [ConditionEvaluator, unknown][], ctx: RequestContext): ConditionOutcome {
  let outcome: ConditionOutcome = "met";
  for (const [evaluator, value] of checks) {
    try {
      const result = evaluator.evaluate(value, ctx);
      if (result === "ask") {
        if (outcome === "met") outcome = "ask";
      } else if (result !== true) outcome = "unmet";
    } catch {
      return "invalid";
    }
  }
  return outcome;
}

/** The effect a matching grant contributes, or null when it does not count. */
function effectiveEffect(effect: Effect, outcome: ConditionOutcome): Effect | null {
  if (outcome === "unmet") return null;
  if (outcome === "invalid") return "deny";
  // Approval only ever tightens: an allow asks, an ask or deny stays what it is.
  return outcome === "ask" && effect === "allow" ? "ask" : effect;
}

/**
 * Whether a counted grant displaces the current best. On a full tie (same specificity and effect) the later
 * grant wins: the same result as a stable ascending sort of the matches that takes the last one, which is
 * how the naive model in evaluate.property.test.ts states the rule.
 */
function outranks(specificity: number, effect: Effect, bestSpecificity: number, bestEffect: Effect | null): boolean {
  if (bestEffect === null || specificity > bestSpecificity) return true;
  return specificity === bestSpecificity && PRIORITY[effect] >= PRIORITY[bestEffect];
}

function decision(winner: GrantRule | null, effect: Effect | null, specificity: number): Decision {
  return { effect, allowed: effect === "allow", winner, specificity: winner ? specificity : null };
}

/** The hot path: one pass, no match list, no sort. */
export function evaluateGrants(
  grants: readonly GrantRule[],
  resource: string,
  action: string,
  ctx: RequestContext,
  registry?: ConditionRegistry,
): Decision {
  let winner: GrantRule | null = null;
  let winnerEffect: Effect | null = null;
  let winnerSpecificity = -1;
  let conditionCtx: RequestContext | undefined;
  for (const grant of grants) {
    if (!applies(grant, resource, action, ctx.now)) continue;
    const specificity = grantSpecificity(grant.resource, grant.action);
    // A less specific grant cannot win whatever its conditions say, so they are not evaluated.
    if (specificity < winnerSpecificity) continue;
    let effect: Effect | null = grant.effect;
    if (grant.conditions !== null) {
      conditionCtx ??= { ...ctx, resource, action };
      effect = effectiveEffect(grant.effect, conditionOutcome(grant, conditionCtx, registry));
    }
    if (effect !== null && outranks(specificity, effect, winnerSpecificity, winnerEffect)) {
      winner = grant;
      winnerEffect = effect;
      winnerSpecificity = specificity;
    }
  }
  return decision(winner, winnerEffect, winnerSpecificity);
}

/** Display order: most specific first, then by effective effect (uncounted last), the winner first on ties. */
function byRank(a: MatchedGrant, b: MatchedGrant): number {
  const rank = (m: MatchedGrant) => (m.effective === null ? -1 : PRIORITY[m.effective]);
  return b.specificity - a.specificity || rank(b) - rank(a);
}

/** The same decision as evaluateGrants, plus every matching grant with how it fared. */
export function explainGrants(
  grants: readonly GrantRule[],
  resource: string,
  action: string,
  ctx: RequestContext,
  registry?: ConditionRegistry,
): Explanation {
  const conditionCtx: RequestContext = { ...ctx, resource, action };
  const matching: MatchedGrant[] = [];
  let best: MatchedGrant | null = null;
  let bestEffect: Effect | null = null;
  for (const grant of grants) {
    if (!applies(grant, resource, action, ctx.now)) continue;
    const conditions = conditionOutcome(grant, conditionCtx, registry);
    const entry: MatchedGrant = {
      grant,
      specificity: grantSpecificity(grant.resource, grant.action),
      conditions,
      effective: effectiveEffect(grant.effect, conditions),
    };
    matching.push(entry);
    if (entry.effective !== null && outranks(entry.specificity, entry.effective, best?.specificity ?? -1, bestEffect)) {
      best = entry;
      bestEffect = entry.effective;
    }
  }
  // Reversed first so that the stable sort lists full ties latest-first, putting the winner at the top.
  matching.reverse().sort(byRank);
  return { ...decision(best?.grant ?? null, bestEffect, best?.specificity ?? -1), matching };
}
