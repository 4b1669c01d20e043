/**
 * Tenant resolution for `/api/tenants/:tenantId/...`: the tenant, the caller's principal in it and the
 * caller's grants (`memberAccess`, one D1 round trip) go into the context.
 */
import type { MiddlewareHandler } from "hono";
import { getDb } from "../../db/client";
import { notFound, unauthorized } from "../../errors";
import { memberAccess } from "../../tenancy/tenant-access";
import type { AppEnv } from "../context";

export function resolveTenant(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Already resolved (git token auth, or a second matching mount).
    if (c.get("tenant") && c.get("principal")) return next();
    const user = c.get("user");
    if (!user) throw unauthorized();
    const tenantId = c.req.param("tenantId");
    if (!tenantId) throw notFound("Tenant not found");
    const access = await memberAccess(getDb(c.env), tenantId, user.id);
    c.set("tenant", access.tenant);
    c.set("principal", access.principal);
    c.set("grants", access.grants);
    await next();
  };
}
