/**
 * Compaction: a repository's packs rewritten as one, in the background after pushes, so that reads open
 * one index and a full clone streams one stored object. Stored entries are copied as they are (an
 * ofs-delta's distance is relative to its own entry, a ref-delta names its base by id), so nothing is
 * inflated: the new pack is the old ones' entries under one header, its index theirs with shifted
 * offsets. Only the publish takes the push lease, so pushes are never held up; one that lands meanwhile
 * keeps its pack. The replaced files go on the next cleanup pass rather than under a reader's feet.
 */
import type { Db } from "../../db/client";
import { bytesToHex } from "../../lib/hex";
import { type IndexEntry, readPackIndex, writePackIndex } from "../pack/index-file";
import { PACK_HEADER_SIZE, PACK_TRAILER_SIZE } from "../pack/reader";
import { deletePack, packKey, putIndexFile, readIndexFile } from "../storage/pack-files";
import {
  acquirePushLease,
  type PackRow,
  readRepositoryState,
  releasePushLease,
  replacePacks,
  requestSweep,
} from "../storage/repositories";
import { concatenatedPackBytes, concatenatedPacks } from "./pack-streams";

/** A repository with this many packs is compacted. */
export const COMPACT_AT_PACKS = 4;

/** What a compaction did: the packs it replaced by `packId`, or why it did nothing. */
export type CompactionResult =
  | { compacted: true; packId: string; replaced: number }
  | { compacted: false; reason: "few_packs" | "duplicates" | "busy" | "changed" };

export async function compactRepository(db: Db, bucket: R2Bucket, repositoryId: string): Promise<CompactionResult> {
  const { packs } = await readRepositoryState(db, repositoryId);
  if (packs.length < COMPACT_AT_PACKS) return { compacted: false, reason: "few_packs" };
  // An object in two packs would be in the result twice: such packs stay as they are.
  if (packs.some((p) => p.duplicateObjects > 0)) return { compacted: false, reason: "duplicates" };
  const ordered = [...packs].reverse(); // oldest first: the order they were pushed in
  const packId = bytesToHex(crypto.getRandomValues(new Uint8Array(20)));
  const packBytes = concatenatedPackBytes(ordered);
  let checksum = "";
  // R2 takes a stream of known length in one put: no part buffers, nothing held.
  const sized = new FixedLengthStream(packBytes);
  await Promise.all([
    concatenatedPacks(bucket, repositoryId, ordered, (c) => {
      checksum = c;
    }).pipeTo(sized.writable),
    bucket.put(packKey(repositoryId, packId), sized.readable),
  ]);
  const entries: IndexEntry[] = [];
  let shift = 0;
  for (const pack of ordered) {
    const index = readPackIndex(await readIndexFile(bucket, repositoryId, pack.id));
    for (const entry of index.entries())
      entries.push({ oid: entry.oid, offset: entry.offset + shift, crc32: entry.crc32 });
    shift += pack.packBytes - PACK_HEADER_SIZE - PACK_TRAILER_SIZE;
  }
  const indexBytes = writePackIndex(entries, checksum);
  await putIndexFile(bucket, repositoryId, packId, indexBytes);
  const row: PackRow = {
    id: packId,
    objectCount: entries.length,
    packBytes,
    indexBytes: indexBytes.byteLength,
    duplicateObjects: 0,
  };
  const lease = await acquirePushLease(db, repositoryId);
  if (!lease) {
    await deletePack(bucket, repositoryId, packId);
    return { compacted: false, reason: "busy" };
  }
  try {
    const replaced = ordered.map((p) => p.id);
    if (!(await replacePacks(db, repositoryId, lease, replaced, row))) {
      await deletePack(bucket, repositoryId, packId);
      return { compacted: false, reason: "changed" };
    }
    await requestSweep(db, repositoryId);
    return { compacted: true, packId, replaced: replaced.length };
  } finally {
    await releasePushLease(db, repositoryId, lease);
  }
}
