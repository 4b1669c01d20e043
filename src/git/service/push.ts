/**
 * The push transaction: one writer at a time holds the repository's lease (renewed while the push runs)
 * while the pushed pack is checked (`preparePush`), then the pack is published and the accepted refs move
 * in one guarded batch. The answer is always git's report-status: a repository another push holds is
 * refused ref by ref with the reason and when to retry, which git prints.
 */
import type { Db } from "../../db/client";
import { RECEIVE_PACK_CAPABILITIES } from "../protocol/advertisement";
import { negotiatedCapabilities } from "../protocol/capabilities";
import type { RefCommand } from "../protocol/receive-request";
import { buildReportStatus, type RefStatus } from "../protocol/report-status";
import { negotiatedSideBand } from "../protocol/side-band";
import {
  acquirePushLease,
  PUSH_LEASE_RENEW_MS,
  publishPush,
  pushLeaseExpiry,
  releasePushLease,
  renewPushLease,
  requestSweep,
} from "../storage/repositories";
import { type PushPolicy, preparePush } from "./receive-pack";
import { openRepository } from "./repository";

/**
 * The largest pack a push may carry, as large git hosts allow: packs stream to storage and are indexed as
 * they arrive, so the limit is not the isolate's memory.
 */
export const MAX_PUSH_BYTES = 2 * 1024 * 1024 * 1024;

export type PushRequest = {
  commands: readonly RefCommand[];
  /** The client's capabilities, as sent on the first command. */
  capabilities: readonly string[];
  /** The pack as it arrives, or null when the push only deletes refs. */
  pack: ReadableStream<Uint8Array> | null;
};

/** How long a push waits for the lease before it is refused: compaction and cleanup hold it briefly. */
const LEASE_WAIT_MS = 1_000;

async function leaseWithin(db: Db, repositoryId: string, waitMs: number): Promise<string | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const lease = await acquirePushLease(db, repositoryId);
    if (lease || Date.now() >= deadline) return lease;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What a push did: refused whole because another push holds the repository, or ref by ref. */
export type PushResult =
  | { busy: true; retryInSeconds: number }
  | { busy: false; unpackError: string | null; statuses: RefStatus[] };

/** A smart-HTTP push: the transaction, answered as git's report-status. */
export async function pushToRepository(
  db: Db,
  bucket: R2Bucket,
  repositoryId: string,
  request: PushRequest,
  policy: PushPolicy,
): Promise<Uint8Array> {
  const caps = negotiatedCapabilities(request.capabilities, RECEIVE_PACK_CAPABILITIES);
  const report = (unpackError: string | null, refs: RefStatus[]) =>
    buildReportStatus({ unpackError, refs }, negotiatedSideBand(caps));
  const result = await applyPush(db, bucket, repositoryId, request.commands, request.pack, caps.has("atomic"), policy);
  if (result.busy) {
    const reason = `another push to this repository is in progress; retry in ${result.retryInSeconds} s`;
    return report(
      null,
      request.commands.map((c) => ({ ref: c.ref, ok: false, reason })),
    );
  }
  return report(result.unpackError, result.statuses);
}

/**
 * The push transaction itself, for any caller (smart HTTP, a sidecar's state push). The commands may be a
 * promise when they are only known once the pack has arrived. A busy repository refuses the push without
 * storing its pack; the pack is still read to its end, because git only prints an answer to a request it
 * finished sending.
 */
export async function applyPush(
  db: Db,
  bucket: R2Bucket,
  repositoryId: string,
  commands: readonly RefCommand[] | Promise<readonly RefCommand[]>,
  pack: ReadableStream<Uint8Array> | null,
  atomic: boolean,
  policy: PushPolicy,
): Promise<PushResult> {
  const lease = await leaseWithin(db, repositoryId, LEASE_WAIT_MS);
  if (!lease) {
    await pack?.pipeTo(new WritableStream()).catch(() => {});
    const expiry = await pushLeaseExpiry(db, repositoryId);
    return { busy: true, retryInSeconds: Math.max(1, Math.ceil(((expiry ?? Date.now()) - Date.now()) / 1000)) };
  }
  // Renewed while the push runs; a push that dies stops renewing and frees the repository.
  const renewal = setInterval(() => {
    renewPushLease(db, repositoryId, lease).catch(() => {});
  }, PUSH_LEASE_RENEW_MS);
  try {
    const { refs, store } = await openRepository(db, bucket, repositoryId);
    const outcome = await preparePush({
      bucket,
      repositoryId,
      store,
      currentRefs: refs,
      commands,
      pack,
      atomic,
      policy,
    });
    let statuses = outcome.statuses;
    if (outcome.publish) {
      const published = await publishPush(db, repositoryId, lease, outcome.publish.pack, outcome.publish.updates);
      if (!published) {
        // The pack's files may be in R2 without a catalog row: the cleanup pass removes them.
        await requestSweep(db, repositoryId);
        statuses = statuses.map((s) => (s.ok ? { ref: s.ref, ok: false, reason: "push lease lost; retry" } : s));
      }
    }
    return { busy: false, unpackError: outcome.unpackError, statuses };
  } finally {
    clearInterval(renewal);
    await releasePushLease(db, repositoryId, lease);
  }
}
