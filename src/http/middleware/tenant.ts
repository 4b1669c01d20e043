/**
 * Tenant resolution for `/api/tenants/:tenantId/...`: the tenant, the caller's principal in it and the
 * caller's grants (`memberAccess` for a user, `agentAccess` for an agent's token; one D1 round trip) go
 * into the context.
 */
import type { MiddlewareHandler } from "hono";
import { getDb } from "../../db/client";
import { notFound, unauthorized } from "../../errors";
import { agentAccess, memberAccess } from "../../tenancy/tenant-access";
import type { AppEnv } from "../context";

export function resolveTenant(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Already resolved (git token auth, or a second matching mount).
    if (c.get("tenant") && c.get("principal")) return next();
    const tenantId = c.req.param("tenantId");
    const agent = c.get("agent");
    const user = c.get("user");
    if (!user && !agent) throw unauthorized();
    if (!tenantId) throw notFound("Tenant not found");
    const access = agent
      ? await agentAccess(getDb(c.env), tenantId, agent)
      : await memberAccess(getDb(c.env), tenantId, (user as NonNullable<typeof user>).id);
    c.set("tenant", access.tenant);
    c.set("principal", access.principal);
    c.set("grants", access.grants);
    await next();
  };
}
