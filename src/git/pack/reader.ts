import { createHash } from "node:crypto";
import { bytesToHex } from "../../lib/hex";
import { GitFormatError } from "../objects/errors";
import { hashObject, type ObjectType, objectTypeFromCode } from "../objects/object";
import { applyDelta, readDeltaHeader } from "./delta";
import { crc32, type EntryBase, inflateAt, readEntryHeader } from "./entry";

export const PACK_SIGNATURE = 0x5041434b; // "PACK"
export const PACK_HEADER_SIZE = 12;
export const PACK_TRAILER_SIZE = 20;

export interface GitObject {
  type: ObjectType;
  body: Uint8Array;
}

/** One object of an indexed pack: what a `.idx` needs, plus the type and inflated size. */
export interface PackEntryInfo {
  oid: string;
  type: ObjectType;
  offset: number;
  /** CRC32 of the entry's raw bytes in the pack (header, delta base and compressed data), as in `.idx` v2. */
  crc32: number;
  /** Size of the object (after delta resolution). */
  size: number;
}

export interface ExternalBase extends GitObject {
  oid: string;
}

export interface IndexPackOptions {
  /** Called once per object with its full body, bases before their deltas; may be async (it is awaited). */
  onObject?: (object: { oid: string; type: ObjectType; body: Uint8Array; offset: number }) => void | Promise<void>;
  /** Loads a ref-delta base that is not in the pack (thin packs); null when it does not exist. */
  loadExternal?: (oid: string) => Promise<GitObject | null>;
  /**
   * Bytes of resolved bodies kept as delta bases (re-inflated when evicted); the deltas kept from the first pass get
   * the same budget. Default 16 MiB. Peak memory is about the pack + 2 × cacheBytes + a few of the largest objects.
   */
  cacheBytes?: number;
  /** Objects (and deltas) larger than this are refused with a GitFormatError. Default 100 MiB. */
  maxObjectSize?: number;
}

export interface IndexedPack {
  version: number;
  /** In pack order. */
  entries: PackEntryInfo[];
  /** Hex SHA-1 trailer of the pack (verified). */
  packChecksum: string;
  /** Objects loaded through `loadExternal` (thin pack bases), to append with `completeThinPack`. */
  externalBases: ExternalBase[];
}

interface Entry {
  offset: number;
  code: number;
  size: number;
  dataStart: number;
  end: number;
  base?: EntryBase;
  /** The delta kept from the first pass when it fitted in the budget; otherwise it is inflated again. */
  delta?: Uint8Array;
  oid?: string;
  type?: ObjectType;
  resultSize?: number;
  /** Deltas still to resolve against this entry: its cached body is dropped when it reaches 0. */
  pendingChildren: number;
}

/** Least-recently-used bodies by key, bounded by total bytes. */
class BodyCache {
  private readonly map = new Map<number, GitObject>();
  private bytes = 0;
  constructor(private readonly limit: number) {}

  get(key: number): GitObject | undefined {
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  set(key: number, value: GitObject): void {
    if (value.body.length > this.limit) return;
    this.delete(key);
    this.map.set(key, value);
    this.bytes += value.body.length;
    for (const [oldKey, old] of this.map) {
      if (this.bytes <= this.limit) break;
      this.map.delete(oldKey);
      this.bytes -= old.body.length;
    }
  }

  delete(key: number): void {
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.bytes -= old.body.length;
    }
  }
}

export function readPackHeader(pack: Uint8Array): { version: number; count: number } {
  if (pack.length < PACK_HEADER_SIZE + PACK_TRAILER_SIZE) throw new GitFormatError("pack: too short");
  const view = new DataView(pack.buffer, pack.byteOffset, pack.byteLength);
  if (view.getUint32(0) !== PACK_SIGNATURE) throw new GitFormatError("pack: missing PACK signature");
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new GitFormatError(`pack: unsupported version ${version}`);
  return { version, count: view.getUint32(8) };
}

/**
 * Indexes a pack held in memory, like `git index-pack`: walks every entry (zlib streams are inflated to find where
 * they end), resolves ofs- and ref-deltas (ref-delta bases outside the pack come from `loadExternal`), computes
 * every object id and the CRC32 of every raw entry, and verifies the trailing SHA-1.
 *
 * Memory: whole objects are handed to `onObject` and dropped; only delta bases waiting for their deltas stay in a
 * bounded cache (re-inflated when evicted), plus the deltas themselves while they fit in the same budget.
 */
export async function indexPack(pack: Uint8Array, options: IndexPackOptions = {}): Promise<IndexedPack> {
  const { version, count } = readPackHeader(pack);
  const trailerStart = pack.length - PACK_TRAILER_SIZE;
  const expected = bytesToHex(pack.subarray(trailerStart));
  const actual = createHash("sha1").update(pack.subarray(0, trailerStart)).digest("hex");
  if (actual !== expected) throw new GitFormatError("pack: trailing checksum does not match its content");

  const budget = options.cacheBytes ?? 16 * 1024 * 1024;
  const maxObjectSize = options.maxObjectSize ?? 100 * 1024 * 1024;
  const cache = new BodyCache(budget);
  const entries: Entry[] = [];
  const indexByOffset = new Map<number, number>();
  const ofsChildren = new Map<number, number[]>();
  const refChildren = new Map<string, number[]>();
  const indexByOid = new Map<string, number>();
  let deltaBytes = 0;

  const emit = async (index: number, object: GitObject) => {
    const entry = entries[index] as Entry;
    entry.oid = hashObject(object.type, object.body);
    entry.type = object.type;
    entry.resultSize = object.body.length;
    if (!indexByOid.has(entry.oid)) indexByOid.set(entry.oid, index);
    await options.onObject?.({ oid: entry.oid, type: object.type, body: object.body, offset: entry.offset });
    return entry.oid;
  };

  // Pass 1: find entry boundaries; whole objects are hashed and emitted at once.
  const content = pack.subarray(0, trailerStart);
  let pos = PACK_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (pos >= trailerStart) throw new GitFormatError(`pack: ${count} objects announced, only ${i} present`);
    const header = readEntryHeader(content, pos);
    if (header.size > maxObjectSize)
      throw new GitFormatError(`pack entry at ${pos}: ${header.size} bytes is too large`);
    const { data, consumed } = inflateAt(content, header.dataStart, header.size);
    const { code, size, dataStart } = header;
    const entry: Entry = { offset: pos, code, size, dataStart, end: dataStart + consumed, pendingChildren: 0 };
    const index = entries.push(entry) - 1;
    indexByOffset.set(pos, index);
    if (header.base) {
      entry.base = header.base;
      if ("offset" in header.base) {
        const baseIndex = indexByOffset.get(header.base.offset);
        if (baseIndex === undefined) throw new GitFormatError(`pack entry at ${pos}: ofs-delta base is not an entry`);
        pushTo(ofsChildren, baseIndex, index);
      } else {
        pushTo(refChildren, header.base.oid, index);
      }
      if (deltaBytes + data.length <= budget) {
        entry.delta = data;
        deltaBytes += data.length;
      }
    } else {
      const object = { type: objectTypeFromCode(header.code) as ObjectType, body: data };
      cache.set(index, object);
      await emit(index, object);
    }
    pos = entry.end;
  }
  if (pos !== trailerStart) throw new GitFormatError("pack: unexpected data after the last object");

  for (const [index, children] of ofsChildren) (entries[index] as Entry).pendingChildren += children.length;
  for (const [oid, children] of refChildren) {
    const index = indexByOid.get(oid);
    if (index !== undefined) (entries[index] as Entry).pendingChildren += children.length;
  }
  for (let i = 0; i < entries.length; i++) if ((entries[i] as Entry).pendingChildren === 0) cache.delete(i);

  const externals = new Map<string, GitObject>();

  const dataOf = (entry: Entry): Uint8Array => entry.delta ?? inflateAt(content, entry.dataStart, entry.size).data;

  // Resolves an entry whose base is already resolved: walks down to a cached body, a whole object or an external
  // base, then applies the deltas back up. Keys of external bases are negative and never cached here.
  const resolve = (index: number): GitObject => {
    const chain: number[] = [];
    let current = index;
    let object: GitObject | undefined;
    while (!object) {
      object = cache.get(current);
      if (object) break;
      const entry = entries[current] as Entry;
      if (!entry.base) {
        object = { type: objectTypeFromCode(entry.code) as ObjectType, body: dataOf(entry) };
        break;
      }
      chain.push(current);
      const base = entry.base;
      const next = "offset" in base ? indexByOffset.get(base.offset) : indexByOid.get(base.oid);
      if (next !== undefined && (entries[next] as Entry).oid !== undefined) {
        current = next;
        continue;
      }
      object = "oid" in base ? externals.get(base.oid) : undefined;
      if (!object) throw new GitFormatError(`pack entry at ${entry.offset}: delta base is not available`);
    }
    for (let k = chain.length - 1; k >= 0; k--) {
      const entry = entries[chain[k] as number] as Entry;
      const delta = dataOf(entry);
      if (readDeltaHeader(delta).resultSize > maxObjectSize) {
        throw new GitFormatError(`pack entry at ${entry.offset}: delta result is too large`);
      }
      object = { type: object.type, body: applyDelta(object.body, delta) };
      if (entry.pendingChildren > 0) cache.set(chain[k] as number, object);
    }
    return object;
  };

  const release = (base: EntryBase) => {
    const index = "offset" in base ? indexByOffset.get(base.offset) : indexByOid.get(base.oid);
    if (index === undefined) return;
    const entry = entries[index] as Entry;
    entry.pendingChildren -= 1;
    if (entry.pendingChildren <= 0) cache.delete(index);
  };

  // Depth-first from resolved objects, so a base is usually still cached when its deltas come.
  const resolveFrom = async (stack: number[]) => {
    while (stack.length > 0) {
      const index = stack.pop() as number;
      const entry = entries[index] as Entry;
      if (entry.oid !== undefined) continue;
      const object = resolve(index);
      const oid = await emit(index, object);
      if (entry.base) release(entry.base);
      entry.delta = undefined;
      const refs = refChildren.get(oid) ?? [];
      // Ref-deltas name their base by id, so they are only counted once the base's id is known.
      if (indexByOid.get(oid) === index) entry.pendingChildren += refs.length;
      if (entry.pendingChildren > 0) cache.set(index, object);
      for (const child of ofsChildren.get(index) ?? []) stack.push(child);
      for (const child of refs) stack.push(child);
    }
  };

  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    if (entry.base) continue;
    await resolveFrom([...(ofsChildren.get(i) ?? []), ...(refChildren.get(entry.oid as string) ?? [])]);
  }

  // Thin pack: ref-deltas whose base is not in the pack. Loading one can unlock others, hence the loop.
  const externalBases: ExternalBase[] = [];
  for (;;) {
    const missing = [...refChildren.entries()].filter(
      ([oid, children]) => !indexByOid.has(oid) && !externals.has(oid) && children.some((c) => !entries[c]?.oid),
    );
    if (missing.length === 0) break;
    for (const [oid, children] of missing) {
      const object = options.loadExternal ? await options.loadExternal(oid) : null;
      if (!object) throw new GitFormatError(`pack: delta base ${oid} is neither in the pack nor in the repository`);
      if (hashObject(object.type, object.body) !== oid)
        throw new GitFormatError(`pack: external base ${oid} is corrupt`);
      externals.set(oid, object);
      externalBases.push({ oid, ...object });
      await resolveFrom([...children]);
    }
  }
  const unresolved = entries.find((entry) => entry.oid === undefined);
  if (unresolved) throw new GitFormatError(`pack entry at ${unresolved.offset}: delta cannot be resolved (cycle?)`);

  return {
    version,
    entries: entries.map((entry) => ({
      oid: entry.oid as string,
      type: entry.type as ObjectType,
      offset: entry.offset,
      crc32: crc32(pack.subarray(entry.offset, entry.end)),
      size: entry.resultSize as number,
    })),
    packChecksum: expected,
    externalBases,
  };
}

function pushTo<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
