/**
 * A tenant always keeps at least one active owner. The checks are SQL fragments placed in the WHERE
 * clause of the very statement that would remove the last owner, so two concurrent demotions cannot
 * both succeed (each statement is atomic in D1).
 */
import { type SQL, sql } from "drizzle-orm";
import { principal, principalRole, role } from "../db/schema";

/** True while the tenant has more than one active owner. */
export function hasAnotherActiveOwner(tenantId: string): SQL {
  return sql`(select count(*) from ${principal} p join ${principalRole} pr on pr.principal_id = p.id join ${role} r on r.id = pr.role_id where r.tenant_id = ${tenantId} and r.name = 'owner' and r.is_system = 1 and p.status = 'active') > 1`;
}

/** True when `principalId` is an active owner. */
export function isActiveOwner(principalId: string): SQL {
  return sql`exists (select 1 from ${principal} p join ${principalRole} pr on pr.principal_id = p.id join ${role} r on r.id = pr.role_id where p.id = ${principalId} and p.status = 'active' and r.name = 'owner' and r.is_system = 1)`;
}

/** Guard for removing `principalId` from the set of active owners. */
export function keepsAnOwner(tenantId: string, principalId: string): SQL {
  return sql`(not ${isActiveOwner(principalId)} or ${hasAnotherActiveOwner(tenantId)})`;
}
