/**
 * The push transaction: one writer at a time holds the repository's lease while the pushed pack is
 * checked (`preparePush`), then the pack is published and the accepted refs move in one guarded batch.
 * The answer is git's report-status; a repository another push holds is `busy`.
 */
import type { Db } from "../../db/client";
import { RECEIVE_PACK_CAPABILITIES } from "../protocol/advertisement";
import { negotiatedCapabilities } from "../protocol/capabilities";
import type { RefCommand } from "../protocol/receive-request";
import { buildReportStatus } from "../protocol/report-status";
import { negotiatedSideBand } from "../protocol/side-band";
import { acquirePushLease, publishPush, releasePushLease } from "../storage/repositories";
import { type PushPolicy, preparePush } from "./receive-pack";
import { openRepository } from "./repository";

export type PushRequest = {
  commands: readonly RefCommand[];
  /** The client's capabilities, as sent on the first command. */
  capabilities: readonly string[];
  /** The received pack, or null when the push only deletes refs. */
  pack: Uint8Array | null;
};

export type PushResult = { busy: true } | { busy: false; report: Uint8Array };

export async function pushToRepository(
  db: Db,
  bucket: R2Bucket,
  repositoryId: string,
  request: PushRequest,
  policy: PushPolicy,
): Promise<PushResult> {
  const lease = await acquirePushLease(db, repositoryId);
  if (!lease) return { busy: true };
  try {
    const { refs, store } = await openRepository(db, bucket, repositoryId);
    const caps = negotiatedCapabilities(request.capabilities, RECEIVE_PACK_CAPABILITIES);
    const outcome = await preparePush({
      bucket,
      repositoryId,
      store,
      currentRefs: refs,
      commands: request.commands,
      pack: request.pack,
      atomic: caps.has("atomic"),
      policy,
    });
    let statuses = outcome.statuses;
    if (outcome.publish) {
      const published = await publishPush(db, repositoryId, lease, outcome.publish.pack, outcome.publish.updates);
      if (!published) {
        statuses = statuses.map((s) => (s.ok ? { ref: s.ref, ok: false, reason: "push lease lost; retry" } : s));
      }
    }
    return {
      busy: false,
      report: buildReportStatus({ unpackError: outcome.unpackError, refs: statuses }, negotiatedSideBand(caps)),
    };
  } finally {
    await releasePushLease(db, repositoryId, lease);
  }
}
