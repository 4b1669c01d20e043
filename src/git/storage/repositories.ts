/**
 * Repository metadata in D1: the repository row (HEAD, push lease), refs and the pack catalog.
 *
 * Writers serialize on a lease rather than a lock held in memory, because a Worker may run in many
 * isolates at once: a push takes the lease with one conditional UPDATE, and the statements that publish
 * its pack and move its refs only apply while that same lease is still held (they run in one batch, so
 * they land together or not at all).
 */
import { and, asc, desc, eq, isNull, lt, or } from "drizzle-orm";
import type { Db } from "../../db/client";
import { gitPack, gitRef, gitRepository } from "../../db/schema";
import { ZERO_OID } from "../objects/oid";

/** How long a push may hold the repository before another writer may take over. */
export const PUSH_LEASE_MS = 120_000;

export type RefRow = { name: string; oid: string };
export type PackRow = {
  id: string;
  objectCount: number;
  packBytes: number;
  indexBytes: number;
  duplicateObjects: number;
};
export type RepositoryRow = typeof gitRepository.$inferSelect;

/** Creates the repository row if it does not exist yet (idempotent). */
export async function ensureRepository(db: Db, id: string, tenantId: string): Promise<void> {
  await db.insert(gitRepository).values({ id, tenantId }).onConflictDoNothing();
}

export async function getRepository(db: Db, id: string): Promise<RepositoryRow | null> {
  return (await db.query.gitRepository.findFirst({ where: eq(gitRepository.id, id) })) ?? null;
}

/** Refs and packs in one round trip: everything a read (advertisement or fetch) needs. */
export async function readRepositoryState(db: Db, id: string): Promise<{ refs: RefRow[]; packs: PackRow[] }> {
  const [refs, packs] = await db.batch([
    db
      .select({ name: gitRef.name, oid: gitRef.oid })
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

/** Takes the push lease; null when another push holds it. */
export async function acquirePushLease(db: Db, id: string, now = Date.now()): Promise<string | null> {
  const token = crypto.randomUUID();
  const taken = await db
    .update(gitRepository)
    .set({ leaseToken: token, leaseExpiresAt: new Date(now + PUSH_LEASE_MS) })
    .where(
      and(
        eq(gitRepository.id, id),
        or(isNull(gitRepository.leaseToken), lt(gitRepository.leaseExpiresAt, new Date(now))),
      ),
    )
    .returning({ id: gitRepository.id });
  return taken.length === 1 ? token : null;
}

export async function releasePushLease(db: Db, id: string, token: string): Promise<void> {
  await db
    .update(gitRepository)
    .set({ leaseToken: null, leaseExpiresAt: null })
    .where(and(eq(gitRepository.id, id), eq(gitRepository.leaseToken, token)));
}

export type RefUpdate = { name: string; oldOid: string; newOid: string };

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
              `insert into git_ref (repository_id, name, oid, updated_at) select ?1, ?4, ?5, ?3 where ${held}
               on conflict (repository_id, name) do update set oid = excluded.oid, updated_at = excluded.updated_at`,
            )
            .bind(id, leaseToken, now, u.name, u.newOid),
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
      db.insert(gitRef).values({ repositoryId: id, name: r.name, oid: r.oid, updatedAt: new Date(now) }),
    ),
  ] as const;
}

export async function deleteRepository(db: Db, id: string): Promise<void> {
  await db.delete(gitRepository).where(eq(gitRepository.id, id));
}
