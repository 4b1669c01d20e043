/** Tenants: creation with their system roles, grants and owner, all-or-nothing in one D1 batch. */
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { grant, principal, principalRole, role, tenant } from "../db/schema";
import { conflict } from "../errors";
import { newId as defaultNewId, type IdKind } from "../lib/ids";
import { type SystemRoleName, systemRoles } from "./system-roles";

export type TenantRow = typeof tenant.$inferSelect;

export type CreateTenantInput = {
  name: string;
  slug: string;
  parentId: string | null;
  ownerUserId: string;
  config?: Record<string, unknown> | null;
};

export type CreatedTenant = { tenant: TenantRow; ownerPrincipalId: string; roleIds: Record<SystemRoleName, string> };

/**
 * Inserts the tenant, its three system roles and their grants, and the creator's active `user`
 * principal holding `owner`. One batch: a failure anywhere leaves no trace. `newId` is injectable so a
 * test can force a failure mid-batch.
 */
export async function createTenant(
  db: Db,
  input: CreateTenantInput,
  newId: (kind: IdKind) => string = defaultNewId,
): Promise<CreatedTenant> {
  const [taken] = await db.select({ id: tenant.id }).from(tenant).where(eq(tenant.slug, input.slug)).limit(1);
  if (taken) throw conflict("Slug already taken");

  const now = new Date();
  const tenantId = newId("tenant");
  const ownerPrincipalId = newId("principal");
  const roleIds = { owner: newId("role"), admin: newId("role"), member: newId("role") };
  const names = Object.keys(systemRoles) as SystemRoleName[];

  const [inserted] = await db.batch([
    db
      .insert(tenant)
      .values({
        id: tenantId,
        name: input.name,
        slug: input.slug,
        domain: `${input.slug}.localhost`,
        parentId: input.parentId,
        config: input.config ?? null,
        createdAt: now,
        updatedAt: now,
      })
      .returning(),
    db.insert(role).values(
      names.map((name) => ({
        id: roleIds[name],
        tenantId,
        name,
        description: systemRoles[name].description,
        isSystem: true,
        createdAt: now,
        updatedAt: now,
      })),
    ),
    db.insert(grant).values(
      names.flatMap((name) =>
        systemRoles[name].grants.map((g) => ({
          id: newId("grant"),
          tenantId,
          roleId: roleIds[name],
          resource: g.resource,
          action: g.action,
          effect: g.effect,
          origin: "system" as const,
          createdAt: now,
          updatedAt: now,
        })),
      ),
    ),
    db
      .insert(principal)
      .values({ id: ownerPrincipalId, tenantId, kind: "user", refId: input.ownerUserId, status: "active" }),
    db.insert(principalRole).values({ principalId: ownerPrincipalId, roleId: roleIds.owner }),
  ]);
  const created = inserted[0];
  if (!created) throw new Error("Tenant insert returned no row");
  return { tenant: created, ownerPrincipalId, roleIds };
}

export async function updateTenant(
  db: Db,
  tenantId: string,
  patch: { name?: string | undefined; config?: Record<string, unknown> | null | undefined },
): Promise<TenantRow | undefined> {
  const values: Partial<typeof tenant.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.config !== undefined) values.config = patch.config;
  const [row] = await db.update(tenant).set(values).where(eq(tenant.id, tenantId)).returning();
  return row;
}
