/**
 * The audit log's storage: entries are only ever inserted and read. There is no update or delete here on
 * purpose; entries go only with their tenant.
 */
import { and, eq, gte, lt, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { auditLog } from "../db/schema";
import { newId } from "../lib/ids";

export type AuditRow = typeof auditLog.$inferSelect;

export type AuditEntry = {
  tenantId: string;
  action: string;
  resourceType: string;
  resourceId: string;
  actorPrincipalId: string | null;
  actorUserId: string | null;
  changes: Record<string, unknown> | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string;
};

export async function recordAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db.insert(auditLog).values({ id: newId("auditEntry"), ...entry });
}

export type AuditFilter = {
  action?: string | undefined;
  actorPrincipalId?: string | undefined;
  resourceType?: string | undefined;
  resourceId?: string | undefined;
  /** Inclusive lower bound. */
  since?: Date | undefined;
  /** Exclusive upper bound. */
  until?: Date | undefined;
};

/** Newest first, with the one keyset pagination. */
export function listAuditLog(db: Db, tenantId: string, filter: AuditFilter, page: PageQuery) {
  const where: (SQL | undefined)[] = [eq(auditLog.tenantId, tenantId)];
  if (filter.action) where.push(eq(auditLog.action, filter.action));
  if (filter.actorPrincipalId) where.push(eq(auditLog.actorPrincipalId, filter.actorPrincipalId));
  if (filter.resourceType) where.push(eq(auditLog.resourceType, filter.resourceType));
  if (filter.resourceId) where.push(eq(auditLog.resourceId, filter.resourceId));
  if (filter.since) where.push(gte(auditLog.createdAt, filter.since));
  if (filter.until) where.push(lt(auditLog.createdAt, filter.until));
  return paginate(
    page,
    { time: auditLog.createdAt, id: auditLog.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(auditLog)
        .where(and(...where, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}
