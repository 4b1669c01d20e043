import { ByteBoundedMap } from "../../lib/bounded-map";
import { bytesToHex } from "../../lib/hex";
import { GitFormatError } from "../objects/errors";
import { hashObject, type ObjectType, objectTypeFromCode } from "../objects/object";
import { applyDelta, readDeltaHeader } from "./delta";
import { crc32, type EntryBase, inflateAt, readEntryHeader, TruncatedInflateError } from "./entry";
import { PackInput, type PackSink } from "./pack-input";

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
  /** Called once per object with its full body; may be async (it is awaited). */
  onObject?: (object: { oid: string; type: ObjectType; body: Uint8Array; offset: number }) => void | Promise<void>;
  /** Loads a ref-delta base that is not in the pack (thin packs); null when it does not exist. */
  loadExternal?: (oid: string) => Promise<GitObject | null>;
  /**
   * Bytes of recent bodies kept as delta bases (read again from the sink when evicted); deltas waiting for a
   * base get the same budget. Default 16 MiB. Memory is about 2 × cacheBytes + the largest entry, whatever the
   * pack's size.
   */
  cacheBytes?: number;
  /** Objects (and deltas) larger than this are refused with a GitFormatError. Default 100 MiB. */
  maxObjectSize?: number;
  /** Where a streamed pack's bytes go (storage); required for a stream, implied for bytes in memory. */
  sink?: PackSink;
}

export interface IndexedPack {
  version: number;
  /** In pack order. */
  entries: PackEntryInfo[];
  /** Hex SHA-1 trailer of the pack (verified). */
  packChecksum: string;
  /** Size of the pack in bytes, trailer included. */
  packBytes: number;
  /** Ids of the objects loaded through `loadExternal` (thin pack bases), in the order they were asked for. */
  externalBases: string[];
}

interface Entry {
  offset: number;
  code: number;
  size: number;
  dataStart: number;
  end: number;
  crc32: number;
  base?: EntryBase;
  /** The delta kept from the first pass when it fitted in the budget; otherwise it is read again. */
  delta?: Uint8Array;
  oid?: string;
  type?: ObjectType;
  resultSize?: number;
}

export function readPackHeader(pack: Uint8Array): { version: number; count: number } {
  if (pack.length < PACK_HEADER_SIZE) throw new GitFormatError("pack: too short");
  const view = new DataView(pack.buffer, pack.byteOffset, pack.byteLength);
  if (view.getUint32(0) !== PACK_SIGNATURE) throw new GitFormatError("pack: missing PACK signature");
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new GitFormatError(`pack: unsupported version ${version}`);
  return { version, count: view.getUint32(8) };
}

/** Longest entry header: a 10-byte size varint and a 20-byte base id (an ofs distance is shorter). */
const ENTRY_HEADER_MAX = 32;

/** A pack held in memory, as a stream and as its own sink. */
function memorySource(pack: Uint8Array): { source: ReadableStream<Uint8Array>; sink: PackSink } {
  return {
    source: new ReadableStream({
      start(controller) {
        controller.enqueue(pack);
        controller.close();
      },
    }),
    sink: {
      write: () => {},
      finish: async () => pack.length,
      read: async (offset, length) => pack.subarray(offset, offset + length),
    },
  };
}

/**
 * Indexes a pack like `git index-pack`, in one pass over its bytes as they arrive: every entry is inflated
 * once to find where it ends, whole objects are hashed at once, and a delta is resolved as soon as its
 * base's body is at hand (recent bodies are cached). Deltas whose base was evicted, or comes later, wait
 * until the pack is complete and are then resolved from the sink. Computes every object id and the CRC32 of
 * every raw entry and verifies the trailing SHA-1.
 *
 * Memory stays bounded whatever the pack's size: bytes go to the sink as they are parsed, and what is kept
 * per object is its index entry. On any failure the stream is cancelled; the sink's bytes are the caller's
 * to discard.
 */
export async function indexPack(
  pack: Uint8Array | ReadableStream<Uint8Array>,
  options: IndexPackOptions = {},
): Promise<IndexedPack> {
  const memory = pack instanceof Uint8Array ? memorySource(pack) : null;
  const sink = options.sink ?? memory?.sink;
  if (!sink) throw new Error("indexPack: a streamed pack needs a sink");
  const input = new PackInput(memory ? memory.source : (pack as ReadableStream<Uint8Array>), sink);
  try {
    return await indexInput(input, sink, options);
  } catch (error) {
    await input.cancel();
    throw error;
  }
}

async function indexInput(input: PackInput, sink: PackSink, options: IndexPackOptions): Promise<IndexedPack> {
  const { version, count } = readPackHeader(await input.available(PACK_HEADER_SIZE));
  await input.consume(PACK_HEADER_SIZE);

  const budget = options.cacheBytes ?? 16 * 1024 * 1024;
  const maxObjectSize = options.maxObjectSize ?? 100 * 1024 * 1024;
  // Recent bodies by entry index (external bases under negative keys).
  const cache = new ByteBoundedMap<number, GitObject>(budget, (object) => object.body.byteLength);
  const entries: Entry[] = [];
  const indexByOffset = new Map<number, number>();
  const indexByOid = new Map<string, number>();
  // External bases are cached under negative keys; their ids are kept to reload one that was evicted.
  const externalKeys = new Map<string, number>();
  const waiting: number[] = [];
  let deltaBytes = 0;

  const emit = async (index: number, object: GitObject) => {
    const entry = entries[index] as Entry;
    entry.oid = hashObject(object.type, object.body);
    entry.type = object.type;
    entry.resultSize = object.body.length;
    if (!indexByOid.has(entry.oid)) indexByOid.set(entry.oid, index);
    cache.set(index, object);
    await options.onObject?.({ oid: entry.oid, type: object.type, body: object.body, offset: entry.offset });
  };

  const applyTo = (entry: Entry, base: GitObject, delta: Uint8Array): GitObject => {
    if (readDeltaHeader(delta).resultSize > maxObjectSize) {
      throw new GitFormatError(`pack entry at ${entry.offset}: delta result is too large`);
    }
    return { type: base.type, body: applyDelta(base.body, delta) };
  };

  /** A base outside the pack, from the cache or `loadExternal`; undefined when there is none. */
  const external = async (oid: string): Promise<GitObject | undefined> => {
    const key = externalKeys.get(oid);
    const cached = key === undefined ? undefined : cache.get(key);
    if (cached) return cached;
    const object = options.loadExternal ? await options.loadExternal(oid) : null;
    if (!object) return undefined;
    if (hashObject(object.type, object.body) !== oid) throw new GitFormatError(`pack: external base ${oid} is corrupt`);
    const newKey = key ?? -(externalKeys.size + 1);
    externalKeys.set(oid, newKey);
    cache.set(newKey, object);
    return object;
  };

  /** The pack index of a delta's base when that base is already resolved. */
  const resolvedBase = (base: EntryBase): number | undefined => {
    const index = "offset" in base ? indexByOffset.get(base.offset) : indexByOid.get(base.oid);
    return index !== undefined && (entries[index] as Entry).oid !== undefined ? index : undefined;
  };

  // Pass 1: the bytes in order. Each entry is parsed, checksummed and handed to the sink, then dropped.
  for (let i = 0; i < count; i++) {
    const at = input.offset;
    const start = await input.available(ENTRY_HEADER_MAX);
    if (start.length === 0) throw new GitFormatError(`pack: ${count} objects announced, only ${i} present`);
    const header = readEntryHeader(start, 0, at);
    if (header.size > maxObjectSize) throw new GitFormatError(`pack entry at ${at}: ${header.size} bytes is too large`);
    // Ask for a window that holds any sane zlib stream of this size; widen it only if the stream is longer.
    let want = header.dataStart + header.size + (header.size >>> 3) + 64;
    let bytes: Uint8Array;
    let inflated: { data: Uint8Array; consumed: number };
    for (;;) {
      bytes = await input.available(want);
      try {
        inflated = inflateAt(bytes, header.dataStart, header.size, at + header.dataStart);
        break;
      } catch (error) {
        if (!(error instanceof TruncatedInflateError) || input.ended) throw error;
        want = bytes.length * 2;
      }
    }
    const length = header.dataStart + inflated.consumed;
    const entry: Entry = {
      offset: at,
      code: header.code,
      size: header.size,
      dataStart: at + header.dataStart,
      end: at + length,
      crc32: crc32(bytes.subarray(0, length)),
    };
    await input.consume(length);
    const index = entries.push(entry) - 1;
    indexByOffset.set(at, index);
    if (!header.base) {
      await emit(index, { type: objectTypeFromCode(header.code) as ObjectType, body: inflated.data });
      continue;
    }
    entry.base = header.base;
    if ("offset" in header.base && !indexByOffset.has(header.base.offset)) {
      throw new GitFormatError(`pack entry at ${at}: ofs-delta base is not an entry`);
    }
    const baseIndex = resolvedBase(header.base);
    let base = baseIndex === undefined ? undefined : cache.get(baseIndex);
    if (baseIndex === undefined && "oid" in header.base && !indexByOid.has(header.base.oid)) {
      base = await external(header.base.oid);
    }
    if (base) {
      await emit(index, applyTo(entry, base, inflated.data));
    } else {
      waiting.push(index);
      if (deltaBytes + inflated.data.length <= budget) {
        entry.delta = inflated.data;
        deltaBytes += inflated.data.length;
      }
    }
  }
  const trailer = await input.available(PACK_TRAILER_SIZE + 1);
  if (trailer.length < PACK_TRAILER_SIZE) throw new GitFormatError("pack: truncated before its trailing checksum");
  if (trailer.length > PACK_TRAILER_SIZE) throw new GitFormatError("pack: unexpected data after the last object");
  const expected = bytesToHex(trailer);
  if ((await input.digest()) !== expected)
    throw new GitFormatError("pack: trailing checksum does not match its content");
  await input.consume(PACK_TRAILER_SIZE, false);
  const packBytes = await sink.finish();

  // Pass 2: the deltas that waited, from the stored pack. A base precedes its ofs-deltas, so one round in
  // pack order resolves those; ref-deltas whose base came later need another round.
  const dataOf = async (entry: Entry): Promise<Uint8Array> => {
    if (entry.delta) return entry.delta;
    const bytes = await sink.read(entry.dataStart, entry.end - entry.dataStart);
    return inflateAt(bytes, 0, entry.size, entry.dataStart).data;
  };

  /** The body of a resolved entry: from the cache, or rebuilt down its delta chain. */
  const bodyOf = async (index: number): Promise<GitObject> => {
    const chain: number[] = [];
    let current = index;
    let object = cache.get(current);
    while (!object) {
      const entry = entries[current] as Entry;
      if (!entry.base) {
        object = { type: objectTypeFromCode(entry.code) as ObjectType, body: await dataOf(entry) };
        break;
      }
      chain.push(current);
      const next = resolvedBase(entry.base);
      if (next === undefined) {
        object = "oid" in entry.base ? await external(entry.base.oid) : undefined;
        if (!object) throw new GitFormatError(`pack entry at ${entry.offset}: delta base is not available`);
        break;
      }
      current = next;
      object = cache.get(current);
    }
    for (let k = chain.length - 1; k >= 0; k--) {
      const entry = entries[chain[k] as number] as Entry;
      object = applyTo(entry, object, await dataOf(entry));
      cache.set(chain[k] as number, object);
    }
    return object;
  };

  let pending = waiting;
  while (pending.length > 0) {
    const later: number[] = [];
    for (const index of pending) {
      const entry = entries[index] as Entry;
      const base = entry.base as EntryBase;
      const baseIndex = resolvedBase(base);
      let object: GitObject | undefined;
      if (baseIndex !== undefined) object = await bodyOf(baseIndex);
      else if ("oid" in base && !indexByOid.has(base.oid)) object = await external(base.oid);
      if (!object) {
        later.push(index);
        continue;
      }
      await emit(index, applyTo(entry, object, await dataOf(entry)));
      entry.delta = undefined;
    }
    if (later.length === pending.length) {
      const stuck = entries[later[0] as number] as Entry;
      const base = stuck.base as EntryBase;
      if ("oid" in base && !indexByOid.has(base.oid)) {
        throw new GitFormatError(`pack: delta base ${base.oid} is neither in the pack nor in the repository`);
      }
      throw new GitFormatError(`pack entry at ${stuck.offset}: delta cannot be resolved (cycle?)`);
    }
    pending = later;
  }

  return {
    version,
    entries: entries.map((entry) => ({
      oid: entry.oid as string,
      type: entry.type as ObjectType,
      offset: entry.offset,
      crc32: entry.crc32,
      size: entry.resultSize as number,
    })),
    packChecksum: expected,
    packBytes,
    externalBases: [...externalKeys.keys()],
  };
}
