/**
 * Tenant resolution for `/api/tenants/:tenantId/...`: the caller (session or agent token), the tenant, the
 * caller's principal in it and its grants go into the context, all from one D1 round trip
 * (`callerAccess`). Runs before the session middleware, which then has nothing left to do.
 */
import type { MiddlewareHandler } from "hono";
import { getDb } from "../../db/client";
import { notFound, unauthorized } from "../../errors";
import { callerAccess } from "../../tenancy/tenant-access";
import type { AppEnv } from "../context";
import { requestCredential, setCaller } from "./session";

export function resolveTenant(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Already resolved (git token auth, or a second matching mount).
    if (c.get("tenant") && c.get("principal")) return next();
    const tenantId = c.req.param("tenantId");
    const credential = await requestCredential(c);
    if (!credential) throw unauthorized();
    if (!tenantId) throw notFound("Tenant not found");
    const resolved = await callerAccess(getDb(c.env), tenantId, credential);
    if (!resolved) throw unauthorized();
    setCaller(c, resolved.caller);
    c.set("tenant", resolved.access.tenant);
    c.set("principal", resolved.access.principal);
    c.set("grants", resolved.access.grants);
    await next();
  };
}
