import { describe, expect, it } from "vitest";
import { defaultConditionRegistry } from "./conditions";
import { evaluateGrants, explainGrants } from "./evaluate";
import type { ConditionEvaluator, ConditionRegistry, Decision, Effect, GrantRule, RequestContext } from "./types";

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const ctx: RequestContext = { now: NOW, principalId: "prn_1", tenantId: "tnt_1" };

let nextId = 0;
function grant(
  resource: string,
  action: string,
  effect: Effect,
  extra: Partial<Omit<GrantRule, "resource" | "action" | "effect">> = {},
): GrantRule {
  nextId += 1;
  return { id: `grt_${nextId}`, resource, action, effect, conditions: null, expiresAt: null, ...extra };
}

const always: ConditionEvaluator = { validate: () => null, evaluate: () => true };
const never: ConditionEvaluator = { validate: () => null, evaluate: () => false };
const throwsOnEvaluate: ConditionEvaluator = {
  validate: () => null,
  evaluate: () => {
    throw new Error("boom");
  },
};
const throwsOnValidate: ConditionEvaluator = {
  validate: () => {
    throw new Error("boom");
  },
  evaluate: () => true,
};
const rejectsValue: ConditionEvaluator = { validate: () => "bad value", evaluate: () => true };
const truthyNotTrue: ConditionEvaluator = { validate: () => null, evaluate: () => 1 as unknown as boolean };

const registry: ConditionRegistry = new Map([
  ["always", always],
  ["never", never],
  ["throws", throwsOnEvaluate],
  ["throws_validate", throwsOnValidate],
  ["rejects", rejectsValue],
  ["truthy", truthyNotTrue],
]);

function check(grants: GrantRule[], resource = "agent:agt_1", action = "read", reg?: ConditionRegistry): Decision {
  return evaluateGrants(grants, resource, action, ctx, reg);
}

describe("evaluateGrants: matching and specificity", () => {
  it("denies by default when nothing matches", () => {
    expect(check([])).toEqual({ effect: null, allowed: false, winner: null, specificity: null });
    expect(check([grant("instance:*", "read", "allow"), grant("agent:*", "manage", "allow")])).toEqual({
      effect: null,
      allowed: false,
      winner: null,
      specificity: null,
    });
  });

  it("allows through a matching allow and reports the winner and its specificity", () => {
    const owner = grant("*", "*", "allow");
    expect(check([owner])).toEqual({ effect: "allow", allowed: true, winner: owner, specificity: 0 });
  });

  it("lets a more specific allow override a broader deny, and the reverse", () => {
    const broadDeny = grant("agent:*", "*", "deny");
    const exactAllow = grant("agent:agt_1", "read", "allow");
    expect(check([broadDeny, exactAllow]).winner).toBe(exactAllow);
    expect(check([exactAllow, broadDeny]).effect).toBe("allow");
    const broadAllow = grant("*", "read", "allow");
    const exactDeny = grant("agent:agt_1", "*", "deny");
    expect(check([broadAllow, exactDeny])).toMatchObject({ effect: "deny", allowed: false, specificity: 1011 });
  });

  it("counts literal characters, so a longer wildcard beats a shorter one", () => {
    const shorter = grant("agent:*", "read", "deny");
    const longer = grant("agent:agt*", "read", "allow");
    expect(check([shorter, longer])).toMatchObject({ effect: "allow", winner: longer, specificity: 1013 });
  });

  it("treats ask as not allowed", () => {
    expect(check([grant("agent:*", "read", "ask")])).toMatchObject({ effect: "ask", allowed: false });
  });
});

describe("evaluateGrants: ties on equal specificity", () => {
  const orders = <T>(items: T[]): T[][] =>
    items.length <= 1
      ? [items]
      : items.flatMap((item, i) => orders(items.filter((_, j) => j !== i)).map((rest) => [item, ...rest]));

  it("prefers deny over ask over allow in every input order", () => {
    const allow = grant("agent:*", "read", "allow");
    const ask = grant("agent:*", "read", "ask");
    const deny = grant("agent:*", "read", "deny");
    for (const order of orders([allow, ask, deny])) expect(check(order).winner).toBe(deny);
    for (const order of orders([allow, ask])) expect(check(order).winner).toBe(ask);
    for (const order of orders([allow, deny])) expect(check(order).winner).toBe(deny);
    for (const order of orders([ask, deny])) expect(check(order).winner).toBe(deny);
  });

  it("breaks ties between different patterns of equal specificity the same way", () => {
    const exactResource = grant("agent:agt_1", "*", "allow"); // 1011 + 0
    const exactAction = grant("agent:a*", "read", "ask"); // 7 + 1004
    const bothWild = grant("agent:agt_1*", "*", "deny"); // 11 + 0, does not beat the exact ones
    expect(check([exactResource, exactAction, bothWild])).toMatchObject({ effect: "ask", specificity: 1011 });
    expect(check([exactAction, exactResource]).winner).toBe(exactAction);
    const denySameScore = grant("agent:?*", "read", "deny"); // 7 + 1004, matches nothing here ('?' is literal)
    expect(check([exactResource, denySameScore]).winner).toBe(exactResource);
    const denyMatching = grant("*agt_1", "read", "deny"); // 5 + 1004 = 1009, less specific
    expect(check([denyMatching, exactAction]).winner).toBe(exactAction);
    const denyTie = grant("agent:*1", "read", "deny"); // 7 + 1004
    expect(check([exactResource, exactAction, denyTie])).toMatchObject({ effect: "deny", winner: denyTie });
  });

  it("lets the later grant win a full tie (same specificity and effect), like a stable sort taking the last", () => {
    const first = grant("agent:*", "read", "allow");
    const second = grant("agent:*", "read", "allow");
    expect(check([first, second]).winner).toBe(second);
    expect(check([second, first]).winner).toBe(first);
  });
});

describe("evaluateGrants: expiry", () => {
  it("ignores a grant at its expiry instant and after, keeps it before", () => {
    const at = (expiresAt: number | null) => check([grant("*", "*", "allow", { expiresAt })]).effect;
    expect(at(NOW)).toBeNull();
    expect(at(NOW - 1)).toBeNull();
    expect(at(NOW + 1)).toBe("allow");
    expect(at(null)).toBe("allow");
  });

  it("lets an expired deny stop shadowing an allow", () => {
    const deny = grant("agent:agt_1", "read", "deny", { expiresAt: NOW });
    expect(check([grant("*", "*", "allow"), deny]).effect).toBe("allow");
  });
});

describe("evaluateGrants: conditions without a registry", () => {
  it("skips a conditional allow or ask (fail closed) and falls back to broader grants", () => {
    const member = grant("*", "read", "allow");
    const conditionalAsk = grant("agent:agt_1", "read", "ask", { conditions: { always: true } });
    const conditionalAllow = grant("agent:agt_1", "read", "allow", { conditions: { always: true } });
    expect(check([conditionalAllow])).toMatchObject({ effect: null, allowed: false });
    expect(check([member, conditionalAsk]).winner).toBe(member);
  });

  it("still counts a conditional deny, even with an unknown condition key", () => {
    const deny = grant("agent:agt_1", "read", "deny", { conditions: { no_such_condition: 1 } });
    expect(check([grant("*", "*", "allow"), deny])).toMatchObject({ effect: "deny", winner: deny });
  });

  it("treats empty conditions as unconditional", () => {
    expect(check([grant("*", "*", "allow", { conditions: {} })]).effect).toBe("allow");
  });
});

describe("evaluateGrants: conditions with a registry", () => {
  const owner = grant("*", "*", "allow");
  const conditional = (effect: Effect, conditions: Record<string, unknown>) =>
    grant("agent:agt_1", "read", effect, { conditions });
  const withOwner = (g: GrantRule) => check([owner, g], "agent:agt_1", "read", registry);

  it("counts a grant whose conditions all hold with its own effect", () => {
    const g = conditional("ask", { always: 1 });
    expect(withOwner(g)).toMatchObject({ effect: "ask", winner: g });
  });

  it("skips a grant with a condition that does not hold", () => {
    expect(withOwner(conditional("deny", { always: 1, never: 1 })).winner).toBe(owner);
    expect(withOwner(conditional("allow", { never: 1 })).winner).toBe(owner);
  });

  it("requires evaluate() to return exactly true", () => {
    expect(withOwner(conditional("deny", { truthy: 1 })).winner).toBe(owner);
  });

  it("turns an unknown key into a deny that beats a less specific allow", () => {
    const g = conditional("allow", { always: 1, geo_fence: "EU" });
    expect(withOwner(g)).toMatchObject({ effect: "deny", allowed: false, winner: g, specificity: 2015 });
  });

  it("turns the default registry's unknown keys into denies rather than errors", () => {
    const g = conditional("allow", { require_approval_above: "10" });
    expect(evaluateGrants([owner, g], "agent:agt_1", "read", ctx, defaultConditionRegistry).effect).toBe("deny");
  });

  it("turns a malformed value or a throwing evaluator into a deny", () => {
    for (const conditions of [{ rejects: 1 }, { throws: 1 }, { throws_validate: 1 }]) {
      expect(withOwner(conditional("allow", conditions)).effect).toBe("deny");
    }
  });

  it("reports invalid regardless of key order when one condition fails and another throws", () => {
    expect(withOwner(conditional("allow", { never: 1, throws: 1 })).effect).toBe("deny");
    expect(withOwner(conditional("allow", { throws: 1, never: 1 })).effect).toBe("deny");
    expect(withOwner(conditional("allow", { never: 1, geo: 1 })).effect).toBe("deny");
  });

  it("turns conditions that are not a plain object into a deny", () => {
    const g = grant("agent:agt_1", "read", "allow", { conditions: ["always"] as unknown as Record<string, unknown> });
    expect(withOwner(g).effect).toBe("deny");
  });

  it("keeps an invalid grant at its own specificity, so a more specific allow still wins", () => {
    const broken = grant("agent:*", "read", "allow", { conditions: { geo: 1 } });
    const exact = grant("agent:agt_1", "read", "allow");
    expect(check([broken, exact], "agent:agt_1", "read", registry).winner).toBe(exact);
    expect(check([exact, broken], "agent:agt_2", "read", registry).effect).toBe("deny");
  });

  it("passes the request, resource and action to evaluators", () => {
    const seen: RequestContext[] = [];
    const spy: ConditionEvaluator = { validate: () => null, evaluate: (_v, c) => seen.push(c) > 0 };
    const request = { ...ctx, ip: "10.0.0.1", spentToday: "1.5", cost: "0.25" };
    evaluateGrants(
      [grant("*", "*", "allow", { conditions: { spy: 1 } })],
      "agent:agt_9",
      "manage",
      request,
      new Map([["spy", spy]]),
    );
    expect(seen).toEqual([{ ...request, resource: "agent:agt_9", action: "manage" }]);
  });
});

describe("explainGrants", () => {
  const owner = grant("*", "*", "allow");
  const member = grant("*", "read", "allow");
  const askOne = grant("agent:agt_1", "read", "ask", { conditions: { never: 1 } });
  const broken = grant("agent:*", "read", "allow", { conditions: { geo: 1 } });
  const denyAgents = grant("agent:*", "read", "deny");
  const expired = grant("agent:agt_1", "read", "allow", { expiresAt: NOW });
  const other = grant("instance:*", "read", "deny");
  const grants = [owner, member, askOne, broken, denyAgents, expired, other];

  it("lists every unexpired matching grant, most specific first, winner on top", () => {
    const explanation = explainGrants(grants, "agent:agt_1", "read", ctx, registry);
    expect(explanation.matching).toEqual([
      { grant: askOne, specificity: 2015, conditions: "unmet", effective: null },
      { grant: denyAgents, specificity: 1010, conditions: "none", effective: "deny" },
      { grant: broken, specificity: 1010, conditions: "invalid", effective: "deny" },
      { grant: member, specificity: 1004, conditions: "none", effective: "allow" },
      { grant: owner, specificity: 0, conditions: "none", effective: "allow" },
    ]);
    expect(explanation).toMatchObject({ effect: "deny", allowed: false, winner: denyAgents, specificity: 1010 });
  });

  it("reports conditional grants without a registry as not counted, or as deny for denies", () => {
    const conditionalDeny = grant("*", "read", "deny", { conditions: { always: 1 } });
    const explanation = explainGrants([askOne, conditionalDeny], "agent:agt_1", "read", ctx);
    expect(explanation.matching.map((m) => [m.conditions, m.effective])).toEqual([
      ["unmet", null],
      ["invalid", "deny"],
    ]);
    expect(explanation.effect).toBe("deny");
  });

  it("returns an empty list and no decision when nothing matches", () => {
    expect(explainGrants([askOne, broken, other, expired], "wallet:wlt_1", "read", ctx, registry)).toEqual({
      effect: null,
      allowed: false,
      winner: null,
      specificity: null,
      matching: [],
    });
  });

  it("reaches the same decision as evaluateGrants", () => {
    const requests: [string, string][] = [
      ["agent:agt_1", "read"],
      ["agent:agt_2", "read"],
      ["agent:agt_1", "manage"],
      ["instance:ins_1", "read"],
      ["wallet:wlt_1", "write"],
    ];
    const sets = [grants, [...grants].reverse(), [member, askOne], [], [broken, other]];
    for (const set of sets) {
      for (const reg of [registry, undefined]) {
        for (const [resource, action] of requests) {
          const { matching: _, ...decision } = explainGrants(set, resource, action, ctx, reg);
          expect(decision).toEqual(evaluateGrants(set, resource, action, ctx, reg));
        }
      }
    }
  });
});
