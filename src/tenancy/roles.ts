/** Roles of a tenant and their assignment to principals. */
import { and, count, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { grant, principalRole, role } from "../db/schema";
import { badRequest, conflict, forbidden, notFound } from "../errors";
import { newId } from "../lib/ids";
import { keepsAnOwner } from "./owners";
import { findPrincipal } from "./principals";

export type RoleRow = typeof role.$inferSelect;

export async function findRole(db: Db, tenantId: string, roleId: string): Promise<RoleRow> {
  const [row] = await db
    .select()
    .from(role)
    .where(and(eq(role.id, roleId), eq(role.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Role not found");
  return row;
}

/** The role and the grants attached to it (what assigning it confers). */
export async function findRoleWithGrants(db: Db, tenantId: string, roleId: string) {
  const found = await findRole(db, tenantId, roleId);
  const grants = await db
    .select()
    .from(grant)
    .where(and(eq(grant.roleId, roleId), eq(grant.tenantId, tenantId)));
  return { role: found, grants };
}

export function listRoles(db: Db, tenantId: string, page: PageQuery) {
  return paginate(
    page,
    { time: role.createdAt, id: role.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(role)
        .where(and(eq(role.tenantId, tenantId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

export async function createRole(
  db: Db,
  tenantId: string,
  input: { name: string; description?: string | null | undefined },
): Promise<RoleRow> {
  const [row] = await db
    .insert(role)
    .values({ id: newId("role"), tenantId, name: input.name, description: input.description ?? null, isSystem: false })
    .returning();
  if (!row) throw new Error("Role insert returned no row");
  return row;
}

export async function updateRole(
  db: Db,
  tenantId: string,
  roleId: string,
  patch: { name?: string | undefined; description?: string | null | undefined },
): Promise<RoleRow> {
  const current = await findRole(db, tenantId, roleId);
  if (current.isSystem) throw forbidden("Cannot modify system roles");
  const values: Partial<typeof role.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.description !== undefined) values.description = patch.description;
  const [row] = await db.update(role).set(values).where(eq(role.id, roleId)).returning();
  if (!row) throw notFound("Role not found");
  return row;
}

export async function deleteRole(db: Db, tenantId: string, roleId: string): Promise<void> {
  const current = await findRole(db, tenantId, roleId);
  if (current.isSystem) throw forbidden("Cannot delete system roles");
  const [assigned] = await db.select({ n: count() }).from(principalRole).where(eq(principalRole.roleId, roleId));
  const n = assigned?.n ?? 0;
  if (n > 0) throw badRequest(`Role is still assigned to ${n} principal(s)`);
  await db.delete(role).where(and(eq(role.id, roleId), eq(role.tenantId, tenantId)));
}

/** Assigns a role to a principal of the same tenant; assigning twice is a no-op. */
export async function assignRole(db: Db, tenantId: string, principalId: string, roleId: string): Promise<void> {
  await findPrincipal(db, tenantId, principalId);
  await findRole(db, tenantId, roleId);
  await db.insert(principalRole).values({ principalId, roleId }).onConflictDoNothing();
}

/**
 * Removes a role from a principal, scoped to the tenant: both must belong to it, else 404. Removing `owner`
 * from the last active owner is refused in the same statement.
 */
export async function unassignRole(db: Db, tenantId: string, principalId: string, roleId: string): Promise<void> {
  await findPrincipal(db, tenantId, principalId);
  const target = await findRole(db, tenantId, roleId).catch(() => null);
  if (!target) throw notFound("Assignment not found");
  const [link] = await db
    .select({ roleId: principalRole.roleId })
    .from(principalRole)
    .where(and(eq(principalRole.principalId, principalId), eq(principalRole.roleId, roleId)))
    .limit(1);
  if (!link) throw notFound("Assignment not found");
  const guard = target.isSystem && target.name === "owner" ? keepsAnOwner(tenantId, principalId) : undefined;
  const deleted = await db
    .delete(principalRole)
    .where(and(eq(principalRole.principalId, principalId), eq(principalRole.roleId, roleId), guard))
    .returning({ roleId: principalRole.roleId });
  if (deleted.length === 0) throw conflict("A tenant must keep at least one active owner");
}
