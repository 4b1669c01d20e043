/**
 * Tenant resolution for `/api/tenants/:tenantId/...`: loads the tenant, the caller's principal in it and
 * the caller's grants in one D1 round trip (a batch). A tenant the caller does not belong to is a 404,
 * exactly like one that does not exist, so ids of other tenants reveal nothing.
 */
import { and, eq, sql } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { grantsOfPrincipalQuery, toGrantRule } from "../../authz/grant-store";
import { getDb } from "../../db/client";
import { principal, tenant } from "../../db/schema";
import { forbidden, notFound, unauthorized } from "../../errors";
import type { AppEnv } from "../context";

export function resolveTenant(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Already resolved (git token auth, or a second matching mount).
    if (c.get("tenant") && c.get("principal")) return next();
    const user = c.get("user");
    if (!user) throw unauthorized();
    const tenantId = c.req.param("tenantId");
    if (!tenantId) throw notFound("Tenant not found");

    const db = getDb(c.env);
    const isCaller = and(eq(principal.tenantId, tenantId), eq(principal.kind, "user"), eq(principal.refId, user.id));
    const activePrincipalId = sql`(select ${principal.id} from ${principal} where ${and(isCaller, eq(principal.status, "active"))})`;
    // No joins inside the batch: D1 batch results are keyed by column name, so joined tables would collide.
    const [tenants, principals, grantRows] = await db.batch([
      db.select().from(tenant).where(eq(tenant.id, tenantId)),
      db.select().from(principal).where(isCaller),
      grantsOfPrincipalQuery(db, tenantId, activePrincipalId, new Date()),
    ]);
    const found = tenants[0];
    const member = principals[0];
    if (!found || !member) throw notFound("Tenant not found");
    if (member.status === "invited") {
      throw forbidden(
        `Your invitation to this tenant is pending; accept it with POST /api/me/invitations/${member.id}/accept`,
      );
    }
    if (member.status !== "active") throw forbidden("Your membership in this tenant is not active");

    c.set("tenant", found);
    c.set("principal", member);
    c.set("grants", grantRows.map(toGrantRule));
    await next();
  };
}
