/**
 * Federation trusts between tenants. A row (tenant A, target B, direction) is A's own statement:
 *
 * - `outbound`: A trusts B, so B's members may discover A's offerings;
 * - `inbound`: A records that it expects B to trust A; on its own this exposes nothing of B (only B can
 *   expose B);
 * - `bilateral`: both of the above.
 *
 * So a tenant's offerings become visible to another tenant only through a row the exposing tenant wrote
 * (`outbound` or `bilateral`); no tenant can widen another tenant's exposure.
 */
import { and, eq, inArray, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { type federationDirections, federationTrust, tenant } from "../db/schema";
import { badRequest, conflict, notFound } from "../errors";
import { newId } from "../lib/ids";

export type FederationDirection = (typeof federationDirections)[number];

export type TrustView = {
  id: string;
  tenantId: string;
  tenantName: string;
  tenantDomain: string;
  direction: FederationDirection;
  createdAt: Date;
};

/** Directions under which the writing tenant exposes itself to the target. */
export const EXPOSING_DIRECTIONS: FederationDirection[] = ["outbound", "bilateral"];

const trustView = {
  id: federationTrust.id,
  tenantId: federationTrust.targetTenantId,
  tenantName: tenant.name,
  tenantDomain: tenant.domain,
  direction: federationTrust.direction,
  createdAt: federationTrust.createdAt,
};

function withFallbacks(row: {
  id: string;
  tenantId: string;
  tenantName: string | null;
  tenantDomain: string | null;
  direction: FederationDirection;
  createdAt: Date;
}): TrustView {
  return { ...row, tenantName: row.tenantName ?? "Unknown", tenantDomain: row.tenantDomain ?? "unknown" };
}

export async function listTrusts(db: Db, tenantId: string, page: PageQuery) {
  const result = await paginate(
    page,
    { time: federationTrust.createdAt, id: federationTrust.id },
    (keyset, orderBy, limit) =>
      db
        .select(trustView)
        .from(federationTrust)
        .leftJoin(tenant, eq(tenant.id, federationTrust.targetTenantId))
        .where(and(eq(federationTrust.tenantId, tenantId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
  return { data: result.data.map(withFallbacks), nextCursor: result.nextCursor };
}

export async function createTrust(
  db: Db,
  tenantId: string,
  input: { targetTenantId: string; direction: FederationDirection },
): Promise<TrustView> {
  if (input.targetTenantId === tenantId) throw badRequest("A tenant cannot federate with itself");
  const [target] = await db
    .select({ id: tenant.id, name: tenant.name, domain: tenant.domain })
    .from(tenant)
    .where(eq(tenant.id, input.targetTenantId))
    .limit(1);
  if (!target) throw notFound("Target tenant not found");
  const [existing] = await db
    .select({ id: federationTrust.id })
    .from(federationTrust)
    .where(and(eq(federationTrust.tenantId, tenantId), eq(federationTrust.targetTenantId, target.id)))
    .limit(1);
  if (existing) throw conflict("A trust with this tenant already exists");
  // A concurrent duplicate still fails on the unique index, which the error handler maps to 409.
  const [row] = await db
    .insert(federationTrust)
    .values({ id: newId("federationTrust"), tenantId, targetTenantId: target.id, direction: input.direction })
    .returning();
  if (!row) throw new Error("Trust insert returned no row");
  return {
    id: row.id,
    tenantId: target.id,
    tenantName: target.name,
    tenantDomain: target.domain,
    direction: row.direction,
    createdAt: row.createdAt,
  };
}

export async function deleteTrust(db: Db, tenantId: string, targetTenantId: string): Promise<void> {
  const deleted = await db
    .delete(federationTrust)
    .where(and(eq(federationTrust.tenantId, tenantId), eq(federationTrust.targetTenantId, targetTenantId)))
    .returning({ id: federationTrust.id });
  if (deleted.length === 0) throw notFound("Trust not found");
}

/**
 * SQL condition on a tenant id column: the tenant is `tenantId` itself or a tenant that exposes itself to
 * `tenantId` through its own trust row.
 */
export function visibleTenantCondition(db: Db, column: SQLiteColumn, tenantId: string): SQL | undefined {
  const exposing = db
    .select({ id: federationTrust.tenantId })
    .from(federationTrust)
    .where(and(eq(federationTrust.targetTenantId, tenantId), inArray(federationTrust.direction, EXPOSING_DIRECTIONS)));
  return or(eq(column, tenantId), inArray(column, exposing));
}
