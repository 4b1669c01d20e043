/**
 * The one authorization middleware: the caller's grants (loaded by the tenant middleware) must allow
 * `action` on `resource`. Only `allow` passes; `deny` and no match are a 403, and so is `ask` for a person.
 */
import type { Context, MiddlewareHandler } from "hono";
import { defaultConditionRegistry } from "../../authz/conditions";
import { evaluateGrants } from "../../authz/evaluate";
import type { Decision, RequestContext } from "../../authz/types";
import { getDb } from "../../db/client";
import { forbidden } from "../../errors";
import { gateApiRequest } from "../../runtime/api-gate";
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

/**
 * `ask` refuses a person (they can act themselves) but makes an agent calling with its own token wait:
 * 202 with the approval, and the same request goes through once it is approved.
 */
export function requireGrant(resource: ResourceOf, action: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const target = typeof resource === "string" ? resource : resource(c);
    const decision = decide(c, target, action);
    if (decision.allowed) return next();
    const agent = c.get("agent");
    if (decision.effect !== "ask" || !agent) throw forbidden();
    const url = new URL(c.req.url);
    const gate = await gateApiRequest(c.env, getDb(c.env), agent, {
      resource: target,
      action,
      method: c.req.method,
      path: url.pathname + url.search,
      body: new Uint8Array(await c.req.arrayBuffer()),
    });
    if (gate.outcome === "approved") return next();
    if (gate.outcome === "rejected") {
      const reason = gate.approval.message ? `: ${gate.approval.message}` : "";
      throw forbidden(`This request was rejected (approval ${gate.approval.id})${reason}`, "approval_rejected");
    }
    return c.json({ approval: gate.approval, retry: PENDING_RETRY }, 202);
  };
}

const PENDING_RETRY = "Send the same request again once the approval is approved";

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
