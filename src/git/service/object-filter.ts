/**
 * What a partial-clone filter keeps of the trees and blobs a fetch's walk finds below its commits. Objects
 * the client wants by id are not asked about: git sends them whatever the filter, which is how a partial
 * clone later fetches a blob or tree it lacks.
 */
import { GitFormatError } from "../objects/errors";
import { OFS_DELTA, REF_DELTA } from "../objects/object";
import { readDeltaHeader } from "../pack/delta";
import { readEntryHeader } from "../pack/entry";
import type { ObjectFilter } from "../protocol/filter-spec";
import { inflateEntry, type ObjectStore } from "../storage/object-store";

/** Depth counts from a commit's root tree (0); the entries of a tree at depth d are at d + 1. */
export type FilterPolicy = {
  /** Whether a tree at this depth is sent; nothing below a tree that is not is sent either. */
  keepsTree(depth: number): boolean;
  keepsBlob(oid: string, depth: number): Promise<boolean>;
  /** The answer depends on depth: a tree met again nearer the root must be walked again. */
  byDepth: boolean;
};

export const KEEP_EVERYTHING: FilterPolicy = {
  keepsTree: () => true,
  keepsBlob: async () => true,
  byDepth: false,
};

/** The policy of a filter; `blobSize` is asked only by `blob:limit`. */
export function filterPolicy(filter: ObjectFilter, blobSize: (oid: string) => Promise<number>): FilterPolicy {
  switch (filter.kind) {
    case "blob:none":
      return { keepsTree: () => true, keepsBlob: async () => false, byDepth: false };
    case "blob:limit":
      return { keepsTree: () => true, keepsBlob: async (oid) => (await blobSize(oid)) < filter.bytes, byDepth: false };
    case "tree":
      return {
        keepsTree: (depth) => depth < filter.depth,
        keepsBlob: async (_oid, depth) => depth < filter.depth,
        byDepth: true,
      };
  }
}

/** Enough bytes for any entry header: the type and size varint, then an ofs-delta offset or a ref-delta id. */
const ENTRY_HEADER_BYTES = 32;

/**
 * An object's size without inflating it: a whole entry's header says it; a delta's own header says the
 * size of its result (only the delta is inflated, never the chain). A large blob costs one short read.
 */
export async function storedObjectSize(store: ObjectStore, oid: string): Promise<number> {
  const found = store.locate(oid);
  if (!found) throw new GitFormatError(`object ${oid} is missing`);
  const head = await found.pack.reader.read(found.offset, ENTRY_HEADER_BYTES);
  const header = readEntryHeader(head, 0, found.offset);
  if (header.code !== OFS_DELTA && header.code !== REF_DELTA) return header.size;
  const entry = await store.rawEntryAt(found.pack, found.offset);
  return readDeltaHeader(inflateEntry(entry)).resultSize;
}
