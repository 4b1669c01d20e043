/**
 * The sidecar registry: a tenant's runtime hosts, their secrets (SHA-256 only), liveness and load, and the
 * choice of the sidecar that runs a new instance.
 */
import { and, asc, desc, eq, gte, notInArray, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type Page, type PageQuery, paginate } from "../db/pagination";
import { agentInstance, sidecar } from "../db/schema";
import { conflict, notFound } from "../errors";
import { newId } from "../lib/ids";
import { digestsEqual, randomSecret, sha256 } from "../lib/secret-digest";
import { SIDECAR_TIMEOUT_MS } from "./protocol";

export const SIDECAR_SECRET_PREFIX = "ahs_";
export const DEFAULT_SIDECAR_CAPACITY = 16;

export type SidecarRow = typeof sidecar.$inferSelect;
/** A sidecar with the number of its live (not stopped) instances. */
export type SidecarWithLoad = SidecarRow & { liveInstances: number };

/**
 * An instance is live on its sidecar unless it is stopped or `error` (a launch that failed: its session
 * ended, the sidecar is not asked to run it, so it holds no place). What counts against capacity and what
 * `ready` assigns.
 */
const notLive = ["stopped", "error"] as const;

/** Whether an instance in this status is live (the same rule as the queries below). */
export function isLiveStatus(status: string): boolean {
  return !(notLive as readonly string[]).includes(status);
}

/**
 * Live instances assigned to the sidecar of the enclosing query (a correlated subquery). Written out in
 * full because drizzle leaves column names unqualified in single-table queries, which would bind `id` to
 * the inner table.
 */
const liveInstances = sql<number>`(select count(*) from "agent_instance" as "live" where "live"."sidecar_id" = "sidecar"."id" and "live"."status" not in (${sql.join(
  notLive.map((status) => sql`${status}`),
  sql`, `,
)}))`;

/** The live instances assigned to a sidecar (what it is sent on `ready`). */
export function liveInstancesOf(db: Db, sidecarId: string) {
  return db
    .select({ id: agentInstance.id, address: agentInstance.address })
    .from(agentInstance)
    .where(and(eq(agentInstance.sidecarId, sidecarId), notInArray(agentInstance.status, [...notLive])));
}

const withLoad = { row: sidecar, liveInstances } as const;
const flatten = ({ row, liveInstances: n }: { row: SidecarRow; liveInstances: number }): SidecarWithLoad => ({
  ...row,
  liveInstances: Number(n),
});

/**
 * The status as clients should read it: a sidecar recorded `online` whose last heartbeat is older than
 * the timeout is gone (its channel died without a close we saw).
 */
export function effectiveStatus(row: Pick<SidecarRow, "status" | "lastHeartbeat">, now: Date): SidecarRow["status"] {
  if (row.status !== "online") return row.status;
  const fresh = row.lastHeartbeat !== null && now.getTime() - row.lastHeartbeat.getTime() <= SIDECAR_TIMEOUT_MS;
  return fresh ? "online" : "offline";
}

export async function findSidecar(db: Db, tenantId: string, sidecarId: string): Promise<SidecarWithLoad> {
  const [found] = await db
    .select(withLoad)
    .from(sidecar)
    .where(and(eq(sidecar.id, sidecarId), eq(sidecar.tenantId, tenantId)))
    .limit(1);
  if (!found) throw notFound("Sidecar not found");
  return flatten(found);
}

export async function listSidecars(db: Db, tenantId: string, page: PageQuery): Promise<Page<SidecarWithLoad>> {
  const rows = await paginate(
    page,
    { time: sidecar.createdAt, id: sidecar.id },
    (keyset, orderBy, limit) =>
      db
        .select(withLoad)
        .from(sidecar)
        .where(and(eq(sidecar.tenantId, tenantId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    ({ row }) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
  return { data: rows.data.map(flatten), nextCursor: rows.nextCursor };
}

export type SidecarInput = { name: string; url?: string | null | undefined; capacity?: number | undefined };

/** Registers a sidecar; the plaintext secret exists only in the return value. */
export async function createSidecar(
  db: Db,
  tenantId: string,
  input: SidecarInput,
): Promise<{ row: SidecarWithLoad; secret: string }> {
  const secret = randomSecret(SIDECAR_SECRET_PREFIX);
  const [row] = await db
    .insert(sidecar)
    .values({
      id: newId("sidecar"),
      tenantId,
      name: input.name,
      url: input.url ?? null,
      capacity: input.capacity ?? DEFAULT_SIDECAR_CAPACITY,
      secretHash: await sha256(secret),
      status: "offline",
    })
    .returning();
  if (!row) throw new Error("Sidecar insert returned no row");
  return { row: { ...row, liveInstances: 0 }, secret };
}

export async function updateSidecar(
  db: Db,
  tenantId: string,
  sidecarId: string,
  patch: Partial<SidecarInput>,
): Promise<SidecarWithLoad> {
  const values: Partial<typeof sidecar.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.url !== undefined) values.url = patch.url;
  if (patch.capacity !== undefined) values.capacity = patch.capacity;
  const updated = await db
    .update(sidecar)
    .set(values)
    .where(and(eq(sidecar.id, sidecarId), eq(sidecar.tenantId, tenantId)))
    .returning({ id: sidecar.id });
  if (updated.length === 0) throw notFound("Sidecar not found");
  return findSidecar(db, tenantId, sidecarId);
}

/** Deletes a sidecar that runs no live instance; the check and the delete are one statement. */
export async function deleteSidecar(db: Db, tenantId: string, sidecarId: string): Promise<void> {
  await findSidecar(db, tenantId, sidecarId);
  const deleted = await db
    .delete(sidecar)
    .where(and(eq(sidecar.id, sidecarId), eq(sidecar.tenantId, tenantId), sql`${liveInstances} = 0`))
    .returning({ id: sidecar.id });
  if (deleted.length === 0) throw conflict("The sidecar still runs live instances; stop them first");
}

/** `POST …/heartbeat`: the sidecar is alive now. */
export async function recordHeartbeat(db: Db, tenantId: string, sidecarId: string, now: Date): Promise<void> {
  const updated = await db
    .update(sidecar)
    .set({ status: "online", lastHeartbeat: now, updatedAt: now })
    .where(and(eq(sidecar.id, sidecarId), eq(sidecar.tenantId, tenantId)))
    .returning({ id: sidecar.id });
  if (updated.length === 0) throw notFound("Sidecar not found");
}

/** The control channel opened or pinged. */
export async function markSidecarOnline(db: Db, sidecarId: string, now: Date): Promise<void> {
  await db
    .update(sidecar)
    .set({ status: "online", lastHeartbeat: now, updatedAt: now })
    .where(eq(sidecar.id, sidecarId));
}

/** The control channel closed or went silent; the last heartbeat is kept. */
export async function markSidecarOffline(db: Db, sidecarId: string, now: Date): Promise<void> {
  await db.update(sidecar).set({ status: "offline", updatedAt: now }).where(eq(sidecar.id, sidecarId));
}

/**
 * The sidecar a tenant's secret belongs to, or null. The lookup is by digest (indexed, unique); the
 * constant-time comparison guards the final equality anyway.
 */
export async function authenticateSidecar(db: Db, secret: string): Promise<SidecarRow | null> {
  if (!secret.startsWith(SIDECAR_SECRET_PREFIX) || secret.length > 256) return null;
  const digest = await sha256(secret);
  const [row] = await db.select().from(sidecar).where(eq(sidecar.secretHash, digest)).limit(1);
  if (!row || !digestsEqual(row.secretHash, digest)) return null;
  return row;
}

/**
 * The sidecar to run a new instance of `tenantId`: online with a heartbeat within the timeout and not
 * full, least loaded first (live instances relative to capacity; ties: fewer live instances, then the
 * freshest heartbeat). Null when none qualifies. One query.
 */
export async function pickSidecar(db: Db, tenantId: string, now: Date): Promise<SidecarWithLoad | null> {
  const load: SQL = sql`cast(${liveInstances} as real) / ${sidecar.capacity}`;
  const [found] = await db
    .select(withLoad)
    .from(sidecar)
    .where(
      and(
        eq(sidecar.tenantId, tenantId),
        eq(sidecar.status, "online"),
        gte(sidecar.lastHeartbeat, new Date(now.getTime() - SIDECAR_TIMEOUT_MS)),
        sql`${liveInstances} < ${sidecar.capacity}`,
      ),
    )
    .orderBy(asc(load), asc(liveInstances), desc(sidecar.lastHeartbeat), asc(sidecar.id))
    .limit(1);
  return found ? flatten(found) : null;
}
