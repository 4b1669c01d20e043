/**
 * Rate limits on the JSON API, counted in one Durable Object per key so they hold across isolates:
 * on `/api/tenants/{tenantId}/…` per tenant and per principal, on other routes per signed-in user (or
 * agent principal), and on sign-up and sign-in per client address. Failed sign-ins (better-auth's 401)
 * also count in a second, longer window per address; once it is spent, sign-in is refused until it ends.
 * A refused request is a 429 `rate_limited` with `Retry-After`; every limited response carries the IETF
 * `RateLimit-Policy` (every policy that applied) and `RateLimit` (the most restrictive one) headers.
 * Anonymous requests elsewhere are not counted: they are refused anyway.
 */
import type { Context, MiddlewareHandler } from "hono";
import { limitHeader, mostRestrictive, policyHeader, type RateDecision, type RatePolicy } from "../../lib/rate-limit";
import { rateLimiterObject } from "../../runtime/stubs";
import type { PrincipalRow } from "../../tenancy/principals";
import type { TenantRow } from "../../tenancy/tenants";
import type { AppEnv } from "../context";
import { errorResponse } from "../error-envelope";

const SIGN_UP = "/api/auth/sign-up/email";
const SIGN_IN = "/api/auth/sign-in/email";

type Check = { policy: RatePolicy; key: string; cost: number; decision: RateDecision };

/** A non-negative whole number from a Worker var, or the default when it is unset or not one. */
function setting(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

/** The policies of `wrangler.toml` vars and their defaults; a limit of 0 is off. */
export function ratePolicies(env: Env) {
  const windowSeconds = Math.max(1, setting(env.RATE_LIMIT_WINDOW_SECONDS, 60));
  return {
    tenant: { name: "tenant", limit: setting(env.RATE_LIMIT_TENANT_PER_MINUTE, 600), windowSeconds },
    principal: { name: "principal", limit: setting(env.RATE_LIMIT_PRINCIPAL_PER_MINUTE, 300), windowSeconds },
    user: { name: "user", limit: setting(env.RATE_LIMIT_PRINCIPAL_PER_MINUTE, 300), windowSeconds },
    address: { name: "address", limit: setting(env.RATE_LIMIT_AUTH_PER_MINUTE, 10), windowSeconds },
    signInFailures: {
      name: "sign-in-failures",
      limit: setting(env.RATE_LIMIT_SIGN_IN_FAILURES, 5),
      windowSeconds: Math.max(1, setting(env.RATE_LIMIT_SIGN_IN_FAILURE_WINDOW_SECONDS, 900)),
    },
  } satisfies Record<string, RatePolicy>;
}

/** The client's address: Cloudflare's `CF-Connecting-IP`, else the first `X-Forwarded-For` entry. */
export function clientAddress(c: Context): string {
  const direct = c.req.header("cf-connecting-ip")?.trim();
  if (direct) return direct;
  return c.req.header("x-forwarded-for")?.split(",")[0]?.trim() || "unknown";
}

/** What this request counts against, before the spending. */
function planOf(c: Context<AppEnv>): Omit<Check, "decision">[] {
  const policies = ratePolicies(c.env);
  const path = c.req.path;
  if (c.req.method === "POST" && (path === SIGN_UP || path === SIGN_IN)) {
    const address = clientAddress(c);
    const plan = [{ policy: policies.address, key: `address:${address}`, cost: 1 }];
    // Sign-in only looks at the failures here; a failure spends one after the answer.
    if (path === SIGN_IN) plan.push({ policy: policies.signInFailures, key: `sign-in-failures:${address}`, cost: 0 });
    return plan;
  }
  // Set by the tenant middleware on tenant routes only.
  const tenant = c.get("tenant") as TenantRow | undefined;
  const principal = c.get("principal") as PrincipalRow | undefined;
  if (tenant && principal) {
    return [
      { policy: policies.tenant, key: `tenant:${tenant.id}`, cost: 1 },
      { policy: policies.principal, key: `principal:${principal.id}`, cost: 1 },
    ];
  }
  const user = c.get("user");
  if (user) return [{ policy: policies.user, key: `user:${user.id}`, cost: 1 }];
  const agent = c.get("agent");
  if (agent) return [{ policy: policies.principal, key: `principal:${agent.principalId}`, cost: 1 }];
  return [];
}

const spendOn = async (env: Env, check: Omit<Check, "decision">, cost = check.cost): Promise<Check> => ({
  ...check,
  decision: await rateLimiterObject(env, check.key).spend(check.policy, cost),
});

function setHeaders(c: Context<AppEnv>, checks: readonly Check[]) {
  c.header("RateLimit-Policy", policyHeader(checks.map((check) => check.policy)));
  const worst = mostRestrictive(checks);
  if (worst) c.header("RateLimit", limitHeader(worst.policy, worst.decision));
}

export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const plan = planOf(c).filter((check) => check.policy.limit > 0);
    if (plan.length === 0) return next();
    let checks = await Promise.all(plan.map((check) => spendOn(c.env, check)));

    const refused = mostRestrictive(checks.filter((check) => !check.decision.allowed));
    if (refused) {
      const retryAfter = refused.decision.resetSeconds;
      setHeaders(c, checks);
      c.header("Retry-After", String(retryAfter));
      return errorResponse(c, 429, "rate_limited", `Too many requests: retry in ${retryAfter} s`, {
        policy: refused.policy.name,
        limit: refused.policy.limit,
        windowSeconds: refused.policy.windowSeconds,
        retryAfter,
      });
    }

    await next();
    if (c.req.path === SIGN_IN && c.res.status === 401) {
      checks = await Promise.all(
        checks.map((check) => (check.policy.name === "sign-in-failures" ? spendOn(c.env, check, 1) : check)),
      );
    }
    setHeaders(c, checks);
  };
}
