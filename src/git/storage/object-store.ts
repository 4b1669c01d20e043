/**
 * Object access for one repository: which pack holds an object (through the packs' `.idx` files), its
 * raw stored entry (for reuse when building packs), and its inflated content (deltas resolved).
 *
 * An entry's extent comes from the index alone: entries are contiguous, so an entry ends where the next
 * one (by offset) begins, or at the pack's trailer. One range read gets the whole entry; nothing is
 * inflated just to find where it ends.
 */
import { inflateSync } from "node:zlib";
import { ByteBoundedMap } from "../../lib/bounded-map";
import { GitFormatError } from "../objects/errors";
import { type ObjectType, OFS_DELTA, objectTypeFromCode, REF_DELTA } from "../objects/object";
import { applyDelta } from "../pack/delta";
import { readEntryHeader } from "../pack/entry";
import { type PackIndex, readPackIndex } from "../pack/index-file";
import { PackFileReader, readIndexFile } from "./pack-files";
import type { PackRow } from "./repositories";

const PACK_TRAILER_BYTES = 20;
const BODY_CACHE_BYTES = 8 * 1024 * 1024;
const MAX_DELTA_DEPTH = 1_000;

export type GitObject = { type: ObjectType; body: Uint8Array };

/** A stored entry as it sits in its pack. */
export type RawEntry = {
  pack: StoredPack;
  offset: number;
  /** Pack type code: 1–4 for whole objects, 6 (ofs-delta) or 7 (ref-delta). */
  code: number;
  /** Inflated size from the entry header (for deltas: the delta's size). */
  size: number;
  /** The header bytes (type, size and, for deltas, the base reference). */
  headerLength: number;
  /** The whole entry: header plus zlib data. */
  bytes: Uint8Array;
  /** For ofs-delta: the base's absolute offset in the same pack; for ref-delta: the base's id. */
  baseOffset?: number;
  baseOid?: string;
};

/** Random access to a pack's bytes (R2 through the block cache). */
export type PackBytesReader = { readonly size: number; read(offset: number, length: number): Promise<Uint8Array> };

export type StoredPack = {
  row: PackRow;
  index: PackIndex;
  reader: PackBytesReader;
  /** Entry start offsets in ascending order, to find where each entry ends. */
  sortedOffsets: Float64Array;
  /** Built on first use: which object starts at an offset (ofs-delta bases). */
  oidAtOffset: Map<number, string> | null;
};

function entryEnd(pack: StoredPack, offset: number): number {
  const offsets = pack.sortedOffsets;
  let lo = 0;
  let hi = offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((offsets[mid] as number) <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo < offsets.length ? (offsets[lo] as number) : pack.reader.size - PACK_TRAILER_BYTES;
}

type ParsedIndex = { index: PackIndex; sortedOffsets: Float64Array; oidAtOffset: Map<number, string> | null };
const parsedIndexes = new WeakMap<Uint8Array, ParsedIndex>();

export class ObjectStore {
  readonly packs: StoredPack[];
  /** Inflated bodies by pack and offset: delta chains share bases, commits get re-read. */
  readonly #bodies = new ByteBoundedMap<string, GitObject>(
    BODY_CACHE_BYTES,
    (object) => object.body.byteLength,
    BODY_CACHE_BYTES / 8,
  );

  private constructor(packs: StoredPack[]) {
    this.packs = packs;
  }

  /** Opens every pack of the repository (their indexes are loaded, concurrently, on open). */
  static async open(bucket: R2Bucket, repositoryId: string, packs: readonly PackRow[]): Promise<ObjectStore> {
    const stored = await Promise.all(
      packs.map(async (row) => {
        const bytes = await readIndexFile(bucket, repositoryId, row.id);
        let parsed = parsedIndexes.get(bytes);
        if (!parsed) {
          const index = readPackIndex(bytes);
          const sortedOffsets = Float64Array.from(index.entries(), (e) => e.offset).sort();
          parsed = { index, sortedOffsets, oidAtOffset: null };
          parsedIndexes.set(bytes, parsed);
        }
        return { row, ...parsed, reader: new PackFileReader(bucket, repositoryId, row.id, row.packBytes) };
      }),
    );
    return new ObjectStore(stored);
  }

  /** This store plus a pack not yet in the catalog (a push being validated), searched first. */
  withPack(row: PackRow, index: PackIndex, reader: PackBytesReader): ObjectStore {
    const sortedOffsets = Float64Array.from(index.entries(), (e) => e.offset).sort();
    return new ObjectStore([{ row, index, reader, sortedOffsets, oidAtOffset: null }, ...this.packs]);
  }

  /** The pack and offset holding `oid`, newest pack first. */
  locate(oid: string): { pack: StoredPack; offset: number } | undefined {
    for (const pack of this.packs) {
      const offset = pack.index.lookup(oid);
      if (offset !== undefined) return { pack, offset };
    }
    return undefined;
  }

  /** The id of the object stored at `offset` (an ofs-delta's base). */
  oidAt(pack: StoredPack, offset: number): string {
    if (!pack.oidAtOffset) {
      const map = new Map<number, string>();
      for (const e of pack.index.entries()) map.set(e.offset, e.oid);
      pack.oidAtOffset = map;
    }
    const oid = pack.oidAtOffset.get(offset);
    if (!oid) throw new GitFormatError(`no object starts at offset ${offset} of pack ${pack.row.id}`);
    return oid;
  }

  has(oid: string): boolean {
    return this.locate(oid) !== undefined;
  }

  async rawEntryAt(pack: StoredPack, offset: number): Promise<RawEntry> {
    const end = entryEnd(pack, offset);
    const bytes = await pack.reader.read(offset, end - offset);
    const header = readEntryHeader(bytes, 0, offset);
    return {
      pack,
      offset,
      bytes,
      code: header.code,
      size: header.size,
      headerLength: header.dataStart,
      baseOffset: header.base && "offset" in header.base ? header.base.offset : undefined,
      baseOid: header.base && "oid" in header.base ? header.base.oid : undefined,
    };
  }

  async rawEntry(oid: string): Promise<RawEntry | undefined> {
    const found = this.locate(oid);
    return found ? this.rawEntryAt(found.pack, found.offset) : undefined;
  }

  async read(oid: string): Promise<GitObject | undefined> {
    const found = this.locate(oid);
    return found ? this.readAt(found.pack, found.offset) : undefined;
  }

  /** Reads an object that must exist (referenced by a commit or tree already in the repository). */
  async get(oid: string): Promise<GitObject> {
    const object = await this.read(oid);
    if (!object) throw new GitFormatError(`object ${oid} is missing from the repository`);
    return object;
  }

  async readAt(pack: StoredPack, offset: number, depth = 0): Promise<GitObject> {
    const key = `${pack.row.id}:${offset}`;
    const cached = this.#bodies.get(key);
    if (cached) return cached;
    if (depth > MAX_DELTA_DEPTH) throw new GitFormatError(`delta chain deeper than ${MAX_DELTA_DEPTH}`);
    const entry = await this.rawEntryAt(pack, offset);
    const data = inflateEntry(entry);
    let object: GitObject;
    if (entry.code === OFS_DELTA) {
      const base = await this.readAt(pack, entry.baseOffset as number, depth + 1);
      object = { type: base.type, body: applyDelta(base.body, data) };
    } else if (entry.code === REF_DELTA) {
      const found = this.locate(entry.baseOid as string);
      if (!found) throw new GitFormatError(`delta base ${entry.baseOid} is missing`);
      const base = await this.readAt(found.pack, found.offset, depth + 1);
      object = { type: base.type, body: applyDelta(base.body, data) };
    } else {
      object = { type: objectTypeFromCode(entry.code) as ObjectType, body: data };
    }
    this.#bodies.set(key, object);
    return object;
  }
}

/** Inflates the zlib data of a stored entry. */
export function inflateEntry(entry: RawEntry): Uint8Array {
  try {
    return new Uint8Array(inflateSync(entry.bytes.subarray(entry.headerLength)));
  } catch (err) {
    throw new GitFormatError(`pack entry at ${entry.offset} does not inflate: ${(err as Error).message}`);
  }
}
