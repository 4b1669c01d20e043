/**
 * The cleanup pass: pack files in R2 that no catalog row names are left by a push that died after writing
 * them, or that lost its lease before publishing. The pass takes each marked repository's push lease, as a
 * push does, so it never races a push: while it holds the lease nothing else writes there, and while a
 * live push holds it the repository waits for the next pass. It runs on a schedule (wrangler.toml
 * `triggers.crons`).
 */
import type { Db } from "../../db/client";
import { deletePack, storedPackIds } from "../storage/pack-files";
import {
  acquirePushLease,
  catalogedPackIds,
  clearSweepRequest,
  releasePushLease,
  repositoriesToSweep,
} from "../storage/repositories";

/** Repositories one pass looks at, at most; the rest wait for the next pass. */
const SWEEP_BATCH = 50;

export type SweepReport = {
  /** Repositories swept. */
  swept: string[];
  /** Repositories a live push held: left for the next pass. */
  busy: string[];
  /** Packs whose files were deleted, as `<repository>:<pack id>`. */
  deleted: string[];
};

export async function sweepOrphanPacks(db: Db, bucket: R2Bucket, now = Date.now()): Promise<SweepReport> {
  const report: SweepReport = { swept: [], busy: [], deleted: [] };
  for (const repositoryId of await repositoriesToSweep(db, SWEEP_BATCH, now)) {
    const lease = await acquirePushLease(db, repositoryId, now);
    if (!lease) {
      report.busy.push(repositoryId);
      continue;
    }
    try {
      const cataloged = await catalogedPackIds(db, repositoryId);
      for (const packId of await storedPackIds(bucket, repositoryId)) {
        if (cataloged.has(packId)) continue;
        await deletePack(bucket, repositoryId, packId);
        report.deleted.push(`${repositoryId}:${packId}`);
      }
      await clearSweepRequest(db, repositoryId, now);
      report.swept.push(repositoryId);
    } finally {
      await releasePushLease(db, repositoryId, lease);
    }
  }
  return report;
}
