/** Grants of a tenant: listing with names, creation aimed at a role or principal of that tenant, edits. */
import { and, eq, inArray, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { type GrantConditions, grant, type grantEffects, type grantOrigins, principal, role } from "../db/schema";
import { badRequest, forbidden, notFound } from "../errors";
import { newId } from "../lib/ids";
import { describePrincipals, findPrincipal } from "../tenancy/principals";
import { findRole } from "../tenancy/roles";
import { defaultConditionRegistry, validateConditions } from "./conditions";
import { explainGrants } from "./evaluate";
import { type GrantRow, grantsOfPrincipalQuery, toGrantRule } from "./grant-store";
import type { Explanation } from "./types";

export type GrantView = GrantRow & { roleName: string | null; principalName: string | null };
type Effect = (typeof grantEffects)[number];
type Origin = (typeof grantOrigins)[number];

export type GrantFilter = {
  principalId?: string | undefined;
  roleId?: string | undefined;
  resource?: string | undefined;
  effect?: Effect | undefined;
};

export type CreateGrantInput = {
  roleId?: string | null | undefined;
  principalId?: string | null | undefined;
  resource: string;
  action: string;
  effect: Effect;
  conditions?: GrantConditions | null | undefined;
  origin?: Origin | undefined;
  expiresAt?: Date | null | undefined;
};

export type UpdateGrantInput = {
  effect?: Effect | undefined;
  conditions?: GrantConditions | null | undefined;
  expiresAt?: Date | null | undefined;
};

/** Rejects conditions the engine would not understand, at write time rather than at every check. */
export function assertValidConditions(conditions: GrantConditions | null | undefined): void {
  if (conditions === null || conditions === undefined) return;
  const issues = validateConditions(conditions, defaultConditionRegistry);
  if (issues.length > 0) {
    throw badRequest(`Invalid conditions: ${issues.join("; ")}`, "invalid_conditions", { issues });
  }
}

function assertFutureExpiry(expiresAt: Date | null | undefined, now: Date): void {
  if (expiresAt && expiresAt.getTime() <= now.getTime()) {
    throw badRequest("expiresAt must be in the future", "invalid_expires_at");
  }
}

async function withNames(db: Db, rows: GrantRow[]): Promise<GrantView[]> {
  const roleIds = [...new Set(rows.flatMap((g) => (g.roleId ? [g.roleId] : [])))];
  const principalIds = [...new Set(rows.flatMap((g) => (g.principalId ? [g.principalId] : [])))];
  const roles = roleIds.length
    ? await db.select({ id: role.id, name: role.name }).from(role).where(inArray(role.id, roleIds))
    : [];
  const principals = principalIds.length
    ? await describePrincipals(db, await db.select().from(principal).where(inArray(principal.id, principalIds)))
    : [];
  const roleNames = new Map(roles.map((r) => [r.id, r.name]));
  const principalNames = new Map(principals.map((p) => [p.id, p.displayName]));
  return rows.map((g) => ({
    ...g,
    roleName: g.roleId ? (roleNames.get(g.roleId) ?? null) : null,
    principalName: g.principalId ? (principalNames.get(g.principalId) ?? null) : null,
  }));
}

export async function findGrant(db: Db, tenantId: string, grantId: string): Promise<GrantRow> {
  const [row] = await db
    .select()
    .from(grant)
    .where(and(eq(grant.id, grantId), eq(grant.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Grant not found");
  return row;
}

export async function findGrantView(db: Db, tenantId: string, grantId: string): Promise<GrantView> {
  const [view] = await withNames(db, [await findGrant(db, tenantId, grantId)]);
  if (!view) throw notFound("Grant not found");
  return view;
}

export async function listGrants(db: Db, tenantId: string, filter: GrantFilter, page: PageQuery) {
  const where: (SQL | undefined)[] = [eq(grant.tenantId, tenantId)];
  if (filter.principalId) where.push(eq(grant.principalId, filter.principalId));
  if (filter.roleId) where.push(eq(grant.roleId, filter.roleId));
  if (filter.resource) where.push(eq(grant.resource, filter.resource));
  if (filter.effect) where.push(eq(grant.effect, filter.effect));
  const result = await paginate(
    page,
    { time: grant.createdAt, id: grant.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(grant)
        .where(and(...where, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
  return { data: await withNames(db, result.data), nextCursor: result.nextCursor };
}

/**
 * Creates a grant on exactly one role or principal of this tenant. `system` grants are the hub's own
 * (seeded with the tenant) and cannot be minted through the API.
 */
export async function createGrant(db: Db, tenantId: string, input: CreateGrantInput): Promise<GrantView> {
  const hasRole = Boolean(input.roleId);
  const hasPrincipal = Boolean(input.principalId);
  if (hasRole === hasPrincipal) throw badRequest("Exactly one of roleId or principalId must be provided");
  if (input.origin === "system") throw forbidden("System grants cannot be created through the API");
  assertValidConditions(input.conditions);
  const now = new Date();
  assertFutureExpiry(input.expiresAt, now);
  if (input.roleId) await findRole(db, tenantId, input.roleId);
  if (input.principalId) await findPrincipal(db, tenantId, input.principalId);

  const [row] = await db
    .insert(grant)
    .values({
      id: newId("grant"),
      tenantId,
      roleId: input.roleId ?? null,
      principalId: input.principalId ?? null,
      resource: input.resource,
      action: input.action,
      effect: input.effect,
      conditions: input.conditions && Object.keys(input.conditions).length > 0 ? input.conditions : null,
      origin: input.origin ?? "role",
      expiresAt: input.expiresAt ?? null,
      createdAt: now,
      updatedAt: now,
    })
    .returning();
  if (!row) throw new Error("Grant insert returned no row");
  return findGrantView(db, tenantId, row.id);
}

function assertNotSystem(row: GrantRow): void {
  if (row.origin === "system") throw forbidden("System grants cannot be modified or deleted");
}

export async function updateGrant(
  db: Db,
  tenantId: string,
  grantId: string,
  patch: UpdateGrantInput,
): Promise<GrantView> {
  assertNotSystem(await findGrant(db, tenantId, grantId));
  assertValidConditions(patch.conditions);
  const now = new Date();
  assertFutureExpiry(patch.expiresAt, now);
  const values: Partial<typeof grant.$inferInsert> = { updatedAt: now };
  if (patch.effect !== undefined) values.effect = patch.effect;
  if (patch.conditions !== undefined) {
    values.conditions = patch.conditions && Object.keys(patch.conditions).length > 0 ? patch.conditions : null;
  }
  if (patch.expiresAt !== undefined) values.expiresAt = patch.expiresAt;
  await db
    .update(grant)
    .set(values)
    .where(and(eq(grant.id, grantId), eq(grant.tenantId, tenantId)));
  return findGrantView(db, tenantId, grantId);
}

export async function deleteGrant(db: Db, tenantId: string, grantId: string): Promise<void> {
  assertNotSystem(await findGrant(db, tenantId, grantId));
  await db.delete(grant).where(and(eq(grant.id, grantId), eq(grant.tenantId, tenantId)));
}

/**
 * Explains what a principal may do: its grants at `now` (direct and through roles), evaluated for
 * (resource, action) with every match, its specificity and condition outcome, and the winner.
 */
export async function explainPrincipalGrants(
  db: Db,
  tenantId: string,
  principalId: string,
  query: { resource: string; action: string; now: number; ip: string | null; spentToday: string | null },
): Promise<{ explained: Explanation; roleIdOf: (grantId: string) => string | null }> {
  await findPrincipal(db, tenantId, principalId);
  const rows = await grantsOfPrincipalQuery(db, tenantId, principalId, new Date(query.now));
  const roleIds = new Map(rows.map((r) => [r.id, r.roleId]));
  const ctx = { now: query.now, principalId, tenantId, ip: query.ip, spentToday: query.spentToday };
  const explained = explainGrants(rows.map(toGrantRule), query.resource, query.action, ctx, defaultConditionRegistry);
  return { explained, roleIdOf: (grantId) => roleIds.get(grantId) ?? null };
}
