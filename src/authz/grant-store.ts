/**
 * Where grants come from: a principal's direct grants plus the grants of its roles, in one tenant,
 * unexpired. Role grants only count for roles of that same tenant.
 */
import { and, eq, gt, inArray, isNull, or, type SQLWrapper } from "drizzle-orm";
import type { Db } from "../db/client";
import { grant, principalRole, role } from "../db/schema";
import type { GrantRule } from "./types";

export type GrantRow = typeof grant.$inferSelect;

export function toGrantRule(row: GrantRow): GrantRule {
  return {
    id: row.id,
    resource: row.resource,
    action: row.action,
    effect: row.effect,
    conditions: row.conditions ?? null,
    expiresAt: row.expiresAt ? row.expiresAt.getTime() : null,
    origin: row.origin,
  };
}

/**
 * The grants query for a principal in a tenant. `principalId` may be a SQL subquery so that the tenant
 * middleware resolves the principal and its grants in a single D1 round trip; any value may be a
 * placeholder (`db/compiled.ts`), `now` then in epoch milliseconds.
 */
export function grantsOfPrincipalQuery(
  db: Db,
  tenantId: string | SQLWrapper,
  principalId: string | SQLWrapper,
  now: Date | SQLWrapper,
) {
  const roleIds = db
    .select({ id: principalRole.roleId })
    .from(principalRole)
    .innerJoin(role, eq(role.id, principalRole.roleId))
    .where(and(eq(principalRole.principalId, principalId), eq(role.tenantId, tenantId)));
  return db
    .select()
    .from(grant)
    .where(
      and(
        eq(grant.tenantId, tenantId),
        or(isNull(grant.expiresAt), gt(grant.expiresAt, now)),
        or(eq(grant.principalId, principalId), inArray(grant.roleId, roleIds)),
      ),
    );
}

export async function collectGrants(db: Db, tenantId: string, principalId: string, now = new Date()) {
  const rows = await grantsOfPrincipalQuery(db, tenantId, principalId, now);
  return rows.map(toGrantRule);
}
