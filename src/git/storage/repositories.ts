/**
 * Repository metadata in D1: the repository row (HEAD, push lease), refs and the pack catalog.
 *
 * Writers serialize on a lease rather than a lock held in memory, because a Worker may run in many
 * isolates at once: a push takes the lease with one conditional UPDATE, and the statements that publish
 * its pack and move its refs only apply while that same lease is still held (they run in one batch, so
 * they land together or not at all).
 *
 * The lease is short and renewed while its push is alive: a push that dies (its isolate or machine gone)
 * stops renewing, and the repository takes the next push within PUSH_LEASE_MS. Taking over an expired
 * lease, or losing one, marks the repository for the cleanup pass, which removes any pack files in R2
 * that no catalog row names.
 */
import { and, asc, desc, eq, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../../db/client";
import { gitPack, gitRef, gitRepository } from "../../db/schema";
import { ZERO_OID } from "../objects/oid";

/** How long a lease lasts without renewal: after a crash, the repository takes pushes again this soon. */
export const PUSH_LEASE_MS = 10_000;
/** A live push renews its lease this often. */
export const PUSH_LEASE_RENEW_MS = 3_000;

/** A ref; `peeled` as kept in D1 (see the schema), absent or null when not known. */
export type RefRow = { name: string; oid: string; peeled?: string | null };
export type PackRow = {
  id: string;
  objectCount: number;
  packBytes: number;
  indexBytes: number;
  duplicateObjects: number;
};
export type RepositoryRow = typeof gitRepository.$inferSelect;

/** Creates the repository row if it does not exist yet (idempotent). */
export async function ensureRepository(db: Db, id: string, tenantId: string, head?: string): Promise<void> {
  await db
    .insert(gitRepository)
    .values({ id, tenantId, ...(head ? { head } : {}) })
    .onConflictDoNothing();
}

export async function getRepository(db: Db, id: string): Promise<RepositoryRow | null> {
  return (await db.query.gitRepository.findFirst({ where: eq(gitRepository.id, id) })) ?? null;
}

/** Refs and packs in one round trip: everything a read (advertisement or fetch) needs. */
export async function readRepositoryState(db: Db, id: string): Promise<{ refs: RefRow[]; packs: PackRow[] }> {
  const [refs, packs] = await db.batch([
    db
      .select({ name: gitRef.name, oid: gitRef.oid, peeled: gitRef.peeled })
      .from(gitRef)
      .where(eq(gitRef.repositoryId, id))
      .orderBy(asc(gitRef.name)),
    db
      .select({
        id: gitPack.id,
        objectCount: gitPack.objectCount,
        packBytes: gitPack.packBytes,
        indexBytes: gitPack.indexBytes,
        duplicateObjects: gitPack.duplicateObjects,
      })
      .from(gitPack)
      .where(eq(gitPack.repositoryId, id))
      // Newest first: recent objects are looked up most often.
      .orderBy(desc(gitPack.createdAt), asc(gitPack.id)),
  ]);
  return { refs, packs };
}

/**
 * Takes the push lease; null when another writer holds it. Taking over a lease that expired held means its
 * writer died: the repository is marked for the cleanup pass.
 */
export async function acquirePushLease(db: Db, id: string, now = Date.now()): Promise<string | null> {
  const token = crypto.randomUUID();
  const taken = await db
    .update(gitRepository)
    .set({
      leaseToken: token,
      leaseExpiresAt: new Date(now + PUSH_LEASE_MS),
      sweepRequestedAt: sql`case when ${gitRepository.leaseToken} is not null then ${now} else ${gitRepository.sweepRequestedAt} end`,
    })
    .where(
      and(
        eq(gitRepository.id, id),
        or(isNull(gitRepository.leaseToken), lt(gitRepository.leaseExpiresAt, new Date(now))),
      ),
    )
    .returning({ id: gitRepository.id });
  return taken.length === 1 ? token : null;
}

/** Extends a lease its holder still has; false when it was lost (expired and taken over). */
export async function renewPushLease(db: Db, id: string, token: string, now = Date.now()): Promise<boolean> {
  const renewed = await db
    .update(gitRepository)
    .set({ leaseExpiresAt: new Date(now + PUSH_LEASE_MS) })
    .where(and(eq(gitRepository.id, id), eq(gitRepository.leaseToken, token)))
    .returning({ id: gitRepository.id });
  return renewed.length === 1;
}

/** When the lease held by someone else frees up at the latest (it may be renewed); null when it is free. */
export async function pushLeaseExpiry(db: Db, id: string, now = Date.now()): Promise<number | null> {
  const [row] = await db
    .select({ expiresAt: gitRepository.leaseExpiresAt })
    .from(gitRepository)
    .where(and(eq(gitRepository.id, id), isNotNull(gitRepository.leaseToken)));
  const expiresAt = row?.expiresAt?.getTime() ?? null;
  return expiresAt !== null && expiresAt >= now ? expiresAt : null;
}

/** Marks the repository for the cleanup pass (a push's pack files may be left without a catalog row). */
export async function requestSweep(db: Db, id: string, now = Date.now()): Promise<void> {
  await db
    .update(gitRepository)
    .set({ sweepRequestedAt: new Date(now) })
    .where(eq(gitRepository.id, id));
}

/** Repositories the cleanup pass should look at: marked, or held by a lease that expired (a dead writer). */
export async function repositoriesToSweep(db: Db, limit: number, now = Date.now()): Promise<string[]> {
  const rows = await db
    .select({ id: gitRepository.id })
    .from(gitRepository)
    .where(
      or(
        isNotNull(gitRepository.sweepRequestedAt),
        and(isNotNull(gitRepository.leaseToken), lt(gitRepository.leaseExpiresAt, new Date(now))),
      ),
    )
    .orderBy(asc(gitRepository.id))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** The swept repository: the mark is cleared, unless a newer one came after `sweptFrom`. */
export async function clearSweepRequest(db: Db, id: string, sweptFrom: number): Promise<void> {
  await db
    .update(gitRepository)
    .set({ sweepRequestedAt: null })
    .where(and(eq(gitRepository.id, id), lt(gitRepository.sweepRequestedAt, new Date(sweptFrom + 1))));
}

/** The ids of the packs in the repository's catalog. */
export async function catalogedPackIds(db: Db, id: string): Promise<Set<string>> {
  const rows = await db.select({ id: gitPack.id }).from(gitPack).where(eq(gitPack.repositoryId, id));
  return new Set(rows.map((r) => r.id));
}

export async function releasePushLease(db: Db, id: string, token: string): Promise<void> {
  await db
    .update(gitRepository)
    .set({ leaseToken: null, leaseExpiresAt: null })
    .where(and(eq(gitRepository.id, id), eq(gitRepository.leaseToken, token)));
}

/** A ref move; `peeled` is what `newOid` peels to (itself when it is not a tag). */
export type RefUpdate = { name: string; oldOid: string; newOid: string; peeled: string };

/**
 * Publishes a pushed pack and moves refs, all or nothing, provided `leaseToken` still holds the lease.
 * Returns false (and writes nothing) when the lease was lost.
 */
export async function publishPush(
  db: Db,
  id: string,
  leaseToken: string,
  pack: PackRow | null,
  updates: readonly RefUpdate[],
  now = Date.now(),
): Promise<boolean> {
  // Plain D1 statements: each one repeats the lease guard, so the batch applies whole or not at all.
  const d1 = db.$client;
  const held = "exists (select 1 from git_repository where id = ?1 and lease_token = ?2 and lease_expires_at >= ?3)";
  const statements: D1PreparedStatement[] = [
    d1
      .prepare(
        `update git_repository set updated_at = ?3 where id = ?1 and lease_token = ?2 and lease_expires_at >= ?3`,
      )
      .bind(id, leaseToken, now),
  ];
  if (pack) {
    statements.push(
      d1
        .prepare(
          `insert into git_pack (id, repository_id, object_count, pack_bytes, index_bytes, duplicate_objects, created_at)
           select ?4, ?1, ?5, ?6, ?7, ?8, ?3 where ${held} on conflict do nothing`,
        )
        .bind(id, leaseToken, now, pack.id, pack.objectCount, pack.packBytes, pack.indexBytes, pack.duplicateObjects),
    );
  }
  for (const u of updates) {
    statements.push(
      u.newOid === ZERO_OID
        ? d1
            .prepare(`delete from git_ref where repository_id = ?1 and name = ?4 and ${held}`)
            .bind(id, leaseToken, now, u.name)
        : d1
            .prepare(
              `insert into git_ref (repository_id, name, oid, peeled, updated_at) select ?1, ?4, ?5, ?6, ?3 where ${held}
               on conflict (repository_id, name) do update
               set oid = excluded.oid, peeled = excluded.peeled, updated_at = excluded.updated_at`,
            )
            .bind(id, leaseToken, now, u.name, u.newOid, u.peeled),
    );
  }
  const [first] = await d1.batch(statements);
  return first?.meta.changes === 1;
}

/** Repository creation with its first pack and refs (genesis), no lease needed: nobody else knows it yet. */
export function createRepositoryWithContent(
  db: Db,
  id: string,
  tenantId: string,
  pack: PackRow,
  refs: readonly RefRow[],
  now = Date.now(),
) {
  return [
    db.insert(gitRepository).values({ id, tenantId, createdAt: new Date(now), updatedAt: new Date(now) }),
    db.insert(gitPack).values({ ...pack, repositoryId: id, createdAt: new Date(now) }),
    ...refs.map((r) =>
      db
        .insert(gitRef)
        .values({ repositoryId: id, name: r.name, oid: r.oid, peeled: r.peeled ?? null, updatedAt: new Date(now) }),
    ),
  ] as const;
}

export async function deleteRepository(db: Db, id: string): Promise<void> {
  await db.delete(gitRepository).where(eq(gitRepository.id, id));
}

/**
 * Replaces packs by the one that holds all their entries (compaction), under the lease: applies only
 * while every replaced pack is still cataloged, so it never drops a pack it did not copy.
 */
export async function replacePacks(
  db: Db,
  id: string,
  leaseToken: string,
  replaced: readonly string[],
  pack: PackRow,
  now = Date.now(),
): Promise<boolean> {
  const d1 = db.$client;
  const guard = `exists (select 1 from git_repository where id = ?1 and lease_token = ?2 and lease_expires_at >= ?3)
    and (select count(*) from git_pack where repository_id = ?1 and id in (select value from json_each(?4))) = ?5`;
  const ids = JSON.stringify(replaced);
  const [inserted] = await d1.batch([
    d1
      .prepare(
        `insert into git_pack (id, repository_id, object_count, pack_bytes, index_bytes, duplicate_objects, created_at)
         select ?6, ?1, ?7, ?8, ?9, 0, ?3 where ${guard}`,
      )
      .bind(id, leaseToken, now, ids, replaced.length, pack.id, pack.objectCount, pack.packBytes, pack.indexBytes),
    d1
      .prepare(
        `delete from git_pack where repository_id = ?1 and id in (select value from json_each(?4))
         and exists (select 1 from git_pack where repository_id = ?1 and id = ?6)
         and exists (select 1 from git_repository where id = ?1 and lease_token = ?2 and lease_expires_at >= ?3)`,
      )
      .bind(id, leaseToken, now, ids, replaced.length, pack.id),
  ]);
  return inserted?.meta.changes === 1;
}
