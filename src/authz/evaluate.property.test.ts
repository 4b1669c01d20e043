/**
 * The engine against a deliberately naive second evaluator that follows the grant rule literally:
 * regex-built globs, every match collected, sorted ascending by (specificity, allow < ask < deny), last wins.
 *
 * Replay a failure with the printed seed. Only VITE_-prefixed variables reach tests running inside workerd,
 * so inside `vitest --project workers` set VITE_AUTHZ_PROPERTY_SEED; AUTHZ_PROPERTY_SEED is read too, for
 * runners that pass the plain name through.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultConditionRegistry } from "./conditions";
import { evaluateGrants, explainGrants } from "./evaluate";
import { matchPattern, specificity } from "./pattern";
import type { ConditionEvaluator, ConditionRegistry, Effect, GrantRule, RequestContext } from "./types";

const DEFAULT_SEED = 20_260_601;
const RUNS = 10_000;

function readSeed(): number {
  const raw = process.env.AUTHZ_PROPERTY_SEED ?? process.env.VITE_AUTHZ_PROPERTY_SEED;
  if (raw === undefined || raw === "") return DEFAULT_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed))
    throw new Error(`AUTHZ_PROPERTY_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed;
}

const SEED = readSeed();
console.log(`authz property seed: ${SEED} (replay: VITE_AUTHZ_PROPERTY_SEED=${SEED})`);
const params = { numRuns: RUNS, seed: SEED };

// ---------------------------------------------------------------------------------------------------------
// The naive evaluator.

const PRIORITY: Record<Effect, number> = { allow: 0, ask: 1, deny: 2 };

function naiveMatch(pattern: string, target: string): boolean {
  const escaped = pattern.split("*").map((piece) => piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`, "s").test(target);
}

function naiveSpecificity(pattern: string): number {
  if (pattern === "*") return 0;
  const literals = [...pattern].filter((c) => c !== "*").length;
  return pattern.includes("*") ? literals : literals + 1000;
}

/** The effect a matching grant contributes under the fail-closed rules, or null when it does not count. */
function naiveEffective(grant: GrantRule, ctx: RequestContext, registry?: ConditionRegistry): Effect | null {
  const conditions = grant.conditions ?? {};
  const keys = Object.keys(conditions);
  if (keys.length === 0) return grant.effect;
  if (!registry) return grant.effect === "deny" ? "deny" : null;
  const outcomes = keys.map((key) => {
    const evaluator = registry.get(key);
    if (!evaluator) return "invalid";
    try {
      if (evaluator.validate(conditions[key]) !== null) return "invalid";
      const result = evaluator.evaluate(conditions[key], ctx);
      return result === "ask" ? "ask" : result === true ? "met" : "unmet";
    } catch {
      return "invalid";
    }
  });
  if (outcomes.includes("invalid")) return "deny";
  if (outcomes.includes("unmet")) return null;
  return outcomes.includes("ask") && grant.effect === "allow" ? "ask" : grant.effect;
}

interface NaiveMatch {
  grant: GrantRule;
  specificity: number;
  effective: Effect | null;
}

function naiveMatches(grants: readonly GrantRule[], request: Request): NaiveMatch[] {
  const ctx = { ...request.ctx, resource: request.resource, action: request.action };
  return grants
    .filter((g) => g.expiresAt === null || g.expiresAt > ctx.now)
    .filter((g) => naiveMatch(g.resource, request.resource) && naiveMatch(g.action, request.action))
    .map((grant) => ({
      grant,
      specificity: naiveSpecificity(grant.resource) + naiveSpecificity(grant.action),
      effective: naiveEffective(grant, ctx, request.registry),
    }));
}

function naiveWinner(matches: NaiveMatch[]): { specificity: number; effect: Effect } | null {
  const counted = matches.flatMap((m) => (m.effective === null ? [] : [{ ...m, effect: m.effective }]));
  counted.sort((a, b) => a.specificity - b.specificity || PRIORITY[a.effect] - PRIORITY[b.effect]);
  return counted.at(-1) ?? null;
}

// ---------------------------------------------------------------------------------------------------------
// Generators: a small alphabet so that patterns match often and specificities tie often.

const NOW = Date.UTC(2026, 5, 1, 8, 30);

const testEvaluators: [string, ConditionEvaluator][] = [
  ["holds", { validate: () => null, evaluate: () => true }],
  ["fails", { validate: () => null, evaluate: () => false }],
  [
    "throws",
    {
      validate: () => null,
      evaluate: () => {
        throw new Error("boom");
      },
    },
  ],
  ["rejects", { validate: () => "never valid", evaluate: () => true }],
];
const testRegistry: ConditionRegistry = new Map([...defaultConditionRegistry, ...testEvaluators]);

const conditionsArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant({}) },
  {
    weight: 4,
    arbitrary: fc
      .subarray(
        [
          ["holds", 1],
          ["fails", 1],
          ["throws", 1],
          ["rejects", 1],
          ["unknown_key", 1],
          ["ip_range", { cidrs: ["10.0.0.0/8", "2001:db8::/32"] }],
          ["ip_range", { cidrs: [] }],
          ["max_spend_per_day", { amount: "5" }],
          ["require_approval_above", { amount: "5" }],
          ["require_approval_above", { amount: "-1" }],
          ["max_spend_per_day", { amount: "5e0" }],
          ["time_window", { after: "08:00", before: "09:00", timezone: "UTC" }],
          ["time_window", { after: "22:00", before: "08:15", timezone: "Europe/Paris" }],
          ["time_window", { after: "08:00", before: "08:00", timezone: "UTC" }],
        ] as [string, unknown][],
        { minLength: 1, maxLength: 3 },
      )
      .map((entries) => Object.fromEntries(entries)),
  },
);

const word = (chars: string[], maxLength: number) =>
  fc.array(fc.constantFrom(...chars), { maxLength }).map((parts) => parts.join(""));

const grantArb: fc.Arbitrary<Omit<GrantRule, "id">> = fc.record({
  resource: fc.oneof(fc.constant("*"), word(["a", "b", ":", "*"], 5)),
  action: fc.oneof(fc.constant("*"), word(["r", "w", "*"], 2)),
  effect: fc.constantFrom<Effect>("allow", "ask", "deny"),
  conditions: conditionsArb,
  expiresAt: fc.oneof(fc.constant(null), fc.integer({ min: NOW - 2, max: NOW + 2 })),
});

const grantsArb = fc
  .array(grantArb, { maxLength: 30 })
  .map((grants) => grants.map((g, i): GrantRule => ({ id: `grt_${i}`, ...g })));

interface Request {
  resource: string;
  action: string;
  ctx: RequestContext;
  registry: ConditionRegistry | undefined;
}

const requestArb: fc.Arbitrary<Request> = fc.record({
  resource: word(["a", "b", ":"], 5),
  action: word(["r", "w"], 2),
  ctx: fc.record({
    now: fc.constantFrom(NOW - 1, NOW, NOW + 1, NOW + 12 * 3_600_000),
    principalId: fc.constant("prn_1"),
    tenantId: fc.constant("tnt_1"),
    ip: fc.constantFrom(undefined, null, "10.1.2.3", "::ffff:10.0.0.9", "2001:db8::7", "192.0.2.1", "junk"),
    spentToday: fc.constantFrom(undefined, null, "0", "4.5", "5", "7"),
    cost: fc.constantFrom(undefined, null, "0", "0.5", "1"),
  }),
  registry: fc.constantFrom(testRegistry, undefined),
});

// ---------------------------------------------------------------------------------------------------------

describe("evaluateGrants against the naive evaluator", () => {
  it("agrees on effect, allowed and the winner's (specificity, effect)", () => {
    fc.assert(
      fc.property(grantsArb, requestArb, (grants, request) => {
        const { resource, action, ctx, registry } = request;
        const matches = naiveMatches(grants, request);
        const expected = naiveWinner(matches);
        const decision = evaluateGrants(grants, resource, action, ctx, registry);
        expect(decision.effect).toBe(expected?.effect ?? null);
        expect(decision.allowed).toBe(expected?.effect === "allow");
        expect(decision.specificity).toBe(expected?.specificity ?? null);
        if (decision.winner) {
          // Any grant tied with the naive winner is an acceptable winner; it must be one of those.
          const own = matches.find((m) => m.grant === decision.winner);
          expect(own).toMatchObject({ specificity: expected?.specificity, effective: expected?.effect });
        } else {
          expect(expected).toBeNull();
        }
      }),
      params,
    );
  });

  it("explainGrants reaches the same decision and lists exactly the naive matches in rank order", () => {
    fc.assert(
      fc.property(grantsArb, requestArb, (grants, request) => {
        const { resource, action, ctx, registry } = request;
        const { matching, ...decision } = explainGrants(grants, resource, action, ctx, registry);
        expect(decision).toEqual(evaluateGrants(grants, resource, action, ctx, registry));
        const byId = (list: { grant: GrantRule; specificity: number; effective: Effect | null }[]) =>
          list.map((m) => [m.grant.id, m.specificity, m.effective]).sort();
        expect(byId(matching)).toEqual(byId(naiveMatches(grants, request)));
        const ranks = matching.map((m) => m.specificity * 4 + (m.effective ? PRIORITY[m.effective] : -1));
        expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
        expect(matching.find((m) => m.effective !== null)?.grant ?? null).toBe(decision.winner);
      }),
      params,
    );
  });
});

describe("matchPattern and specificity against the naive versions", () => {
  const text = (chars: string[]) => word(chars, 8);

  it("agrees with a regex-built anchored glob", () => {
    fc.assert(
      fc.property(text(["a", "b", ":", "*", "."]), text(["a", "b", ":", "*", "."]), (pattern, target) => {
        expect(matchPattern(pattern, target)).toBe(naiveMatch(pattern, target));
      }),
      params,
    );
  });

  it("agrees when the target is built to match", () => {
    const matchingPair = fc
      .array(fc.tuple(text(["a", "b", ":"]), fc.boolean(), text(["a", "b", ":"])), { maxLength: 4 })
      .map((pieces) => ({
        pattern: pieces.map(([literal, star]) => `${literal}${star ? "*" : ""}`).join(""),
        target: pieces.map(([literal, star, filler]) => `${literal}${star ? filler : ""}`).join(""),
      }));
    fc.assert(
      fc.property(matchingPair, ({ pattern, target }) => {
        expect(matchPattern(pattern, target)).toBe(true);
      }),
      params,
    );
  });

  it("agrees on specificity", () => {
    fc.assert(
      fc.property(text(["a", ":", "*"]), (pattern) => {
        expect(specificity(pattern)).toBe(naiveSpecificity(pattern));
      }),
      params,
    );
  });
});
