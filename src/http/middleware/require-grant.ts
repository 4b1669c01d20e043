/**
 * The one authorization middleware: the caller's grants (loaded by the tenant middleware) must allow
 * `action` on `resource`. Only `allow` passes; `deny`, `ask` and no match are a 403.
 */
import type { Context, MiddlewareHandler } from "hono";
import { defaultConditionRegistry } from "../../authz/conditions";
import { evaluateGrants } from "../../authz/evaluate";
import type { Decision, RequestContext } from "../../authz/types";
import { forbidden } from "../../errors";
import type { AppEnv } from "../context";

type ResourceOf = string | ((c: Context<AppEnv>) => string);

/** The condition context of an HTTP request: who, where from, when. */
export function requestContext(c: Context<AppEnv>): RequestContext {
  return {
    now: Date.now(),
    principalId: c.get("principal").id,
    tenantId: c.get("tenant").id,
    ip: c.req.header("cf-connecting-ip") ?? null,
  };
}

export function decide(c: Context<AppEnv>, resource: string, action: string): Decision {
  return evaluateGrants(c.get("grants"), resource, action, requestContext(c), defaultConditionRegistry);
}

export function isAllowed(c: Context<AppEnv>, resource: string, action: string): boolean {
  return decide(c, resource, action).allowed;
}

export function requireGrant(resource: ResourceOf, action: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const target = typeof resource === "string" ? resource : resource(c);
    if (!isAllowed(c, target, action)) throw forbidden();
    await next();
  };
}

/** `"<type>:<value of the path parameter>"`, or `"<type>:*"` when the route has no such parameter. */
export function idResource(type: string, param: string): (c: Context<AppEnv>) => string {
  return (c) => `${type}:${c.req.param(param) || "*"}`;
}

/**
 * No escalation: a caller can only confer (through a grant, a role assignment or an invitation) what
 * they are allowed themselves, checked against the patterns as written.
 */
export function assertCanConfer(c: Context<AppEnv>, grants: readonly { resource: string; action: string }[]): void {
  for (const g of grants) {
    if (!isAllowed(c, g.resource, g.action)) {
      throw forbidden(`You cannot confer a permission you do not hold: ${g.action} on ${g.resource}`);
    }
  }
}
