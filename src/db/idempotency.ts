/**
 * Storage of `Idempotency-Key`s: a key is claimed with one `INSERT … ON CONFLICT DO NOTHING`, so of two
 * concurrent requests with the same key exactly one runs; the other sees the claim. The rules (what is
 * stored, what a clash answers) are the HTTP middleware's; this module keeps the rows.
 */
import { and, eq, lt } from "drizzle-orm";
import { ApiError, conflict } from "../errors";
import { digestsEqual } from "../lib/secret-digest";
import type { Db } from "./client";
import { idempotencyKey } from "./schema";

/** How long a stored response is replayed. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A claim this old without a response belongs to a request whose isolate died: it may be taken over. */
export const IDEMPOTENCY_STALE_CLAIM_MS = 2 * 60 * 1000;

export type StoredResponse = { status: number; contentType: string | null; body: Uint8Array };

/** `claimed`: run the request, then `storeIdempotentResponse` or `releaseIdempotencyKey` with `claimedAt`. */
export type Claim = { kind: "claimed"; claimedAt: Date } | { kind: "replay"; response: StoredResponse };

type Target = { scope: string; key: string };

const rowOf = ({ scope, key }: Target, claimedAt: Date) =>
  and(eq(idempotencyKey.scope, scope), eq(idempotencyKey.key, key), eq(idempotencyKey.createdAt, claimedAt));

export async function claimIdempotencyKey(
  db: Db,
  target: Target,
  requestHash: Uint8Array,
  now = Date.now(),
): Promise<Claim> {
  const claimedAt = new Date(now);
  const inserted = await db
    .insert(idempotencyKey)
    .values({ ...target, requestHash, createdAt: claimedAt })
    .onConflictDoNothing()
    .returning({ key: idempotencyKey.key });
  if (inserted.length > 0) return { kind: "claimed", claimedAt };

  const existing = await db.query.idempotencyKey.findFirst({
    where: and(eq(idempotencyKey.scope, target.scope), eq(idempotencyKey.key, target.key)),
  });
  // Deleted between the insert and the read (a released claim): the caller may simply retry.
  if (!existing) throw inFlight();
  const age = now - existing.createdAt.getTime();
  const free = age >= IDEMPOTENCY_TTL_MS || (existing.status === null && age >= IDEMPOTENCY_STALE_CLAIM_MS);
  if (free) {
    // Compare-and-swap on the old claim's time: of two takers, one wins.
    const taken = await db
      .update(idempotencyKey)
      .set({ requestHash, status: null, contentType: null, body: null, createdAt: claimedAt })
      .where(rowOf(target, existing.createdAt))
      .returning({ key: idempotencyKey.key });
    if (taken.length > 0) return { kind: "claimed", claimedAt };
    throw inFlight();
  }
  if (!digestsEqual(existing.requestHash, requestHash)) {
    throw new ApiError(
      422,
      "idempotency_key_reused",
      "This Idempotency-Key was used with a different request (method, path or body)",
    );
  }
  if (existing.status === null) throw inFlight();
  const body = existing.body ?? new Uint8Array();
  return { kind: "replay", response: { status: existing.status, contentType: existing.contentType, body } };
}

const inFlight = () =>
  conflict("A request with this Idempotency-Key is still in flight; retry later", "idempotency_key_in_flight");

export async function storeIdempotentResponse(
  db: Db,
  target: Target,
  claimedAt: Date,
  response: StoredResponse,
): Promise<void> {
  await db.update(idempotencyKey).set(response).where(rowOf(target, claimedAt));
}

/** Frees the key (only this claim, not one a later request took over) so a retry runs again. */
export async function releaseIdempotencyKey(db: Db, target: Target, claimedAt: Date): Promise<void> {
  await db.delete(idempotencyKey).where(rowOf(target, claimedAt));
}

/** The cleanup pass: deletes keys older than the TTL; returns how many. */
export async function deleteExpiredIdempotencyKeys(db: Db, now = Date.now()): Promise<number> {
  const result = await db
    .delete(idempotencyKey)
    .where(lt(idempotencyKey.createdAt, new Date(now - IDEMPOTENCY_TTL_MS)));
  return result.meta.changes;
}
