import { createHash } from "node:crypto";
import { GitFormatError } from "../objects/errors";
import { type ObjectType, OFS_DELTA, objectTypeFromCode } from "../objects/object";
import { applyDelta } from "./delta";
import {
  crc32,
  type EntryBase,
  encodeEntryHeader,
  encodeObjectEntry,
  encodeOfsDistance,
  inflateAt,
  readEntryHeader,
  TruncatedInflateError,
} from "./entry";
import { type GitObject, PACK_HEADER_SIZE, PACK_SIGNATURE } from "./reader";

/** One entry to write. */
export type PackWriterInput =
  /** A whole object, deflated by the writer. */
  | { type: ObjectType; body: Uint8Array }
  /** A raw entry copied verbatim (header + compressed data): a whole object or a ref-delta from a stored pack. */
  | { raw: Uint8Array }
  /**
   * A raw ofs-delta entry from a stored pack whose base was written earlier in this pack, as entry number
   * `baseIndex` (0-based, in write order): its distance is rewritten for the new positions.
   */
  | { raw: Uint8Array; baseIndex: number };

export interface WrittenEntry {
  index: number;
  offset: number;
  crc32: number;
}

export interface PackWriterOptions {
  /** Called after each entry is queued, e.g. to build an index of the new pack. */
  onEntry?: (entry: WrittenEntry) => void;
  /** Called with the hex trailer checksum once the pack is complete. */
  onEnd?: (packChecksum: string) => void;
}

/**
 * Streams a pack v2: header, `count` entries pulled from `entries` one at a time (so the pack is never built in
 * one buffer), then the SHA-1 trailer. Errors (wrong count, bad raw entry) error the stream.
 */
export function writePack(
  count: number,
  entries: Iterable<PackWriterInput> | AsyncIterable<PackWriterInput>,
  options: PackWriterOptions = {},
): ReadableStream<Uint8Array> {
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) throw new GitFormatError("pack: invalid count");
  const hash = createHash("sha1");
  const offsets: number[] = [];
  let offset = 0;
  let iterator: Iterator<PackWriterInput> | AsyncIterator<PackWriterInput> | undefined;

  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array) => {
    hash.update(bytes);
    offset += bytes.length;
    controller.enqueue(bytes);
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      const header = new Uint8Array(PACK_HEADER_SIZE);
      const view = new DataView(header.buffer);
      view.setUint32(0, PACK_SIGNATURE);
      view.setUint32(4, 2);
      view.setUint32(8, count);
      emit(controller, header);
      iterator =
        Symbol.asyncIterator in entries
          ? (entries as AsyncIterable<PackWriterInput>)[Symbol.asyncIterator]()
          : (entries as Iterable<PackWriterInput>)[Symbol.iterator]();
    },
    async pull(controller) {
      const next = await (iterator as AsyncIterator<PackWriterInput>).next();
      if (next.done) {
        if (offsets.length !== count)
          throw new GitFormatError(`pack: ${count} objects announced, ${offsets.length} written`);
        const checksum = hash.digest();
        controller.enqueue(new Uint8Array(checksum.buffer, checksum.byteOffset, checksum.length));
        options.onEnd?.(checksum.toString("hex"));
        controller.close();
        return;
      }
      if (offsets.length >= count) throw new GitFormatError(`pack: more than ${count} objects given`);
      const input = next.value;
      let bytes: Uint8Array;
      if ("body" in input) {
        bytes = encodeObjectEntry(input.type, input.body);
      } else if ("baseIndex" in input) {
        const baseOffset = offsets[input.baseIndex];
        if (baseOffset === undefined) throw new GitFormatError(`pack: base entry ${input.baseIndex} not written yet`);
        bytes = rewriteOfsDelta(input.raw, offset, baseOffset);
      } else {
        if (input.raw.length === 0 || (((input.raw[0] as number) >> 4) & 7) === OFS_DELTA) {
          throw new GitFormatError("pack: a raw ofs-delta entry needs its baseIndex (or the raw entry is empty)");
        }
        bytes = input.raw;
      }
      const index = offsets.push(offset) - 1;
      options.onEntry?.({ index, offset, crc32: crc32(bytes) });
      emit(controller, bytes);
    },
    async cancel(reason) {
      await iterator?.return?.(reason);
    },
  });
}

/**
 * Rewrites a raw ofs-delta entry (as stored in another pack) for a new pack where it sits at `entryOffset` and its
 * base at `baseOffset`: only the distance varint changes, the compressed delta is copied.
 */
export function rewriteOfsDelta(raw: Uint8Array, entryOffset: number, baseOffset: number): Uint8Array {
  // Parse with a fake position large enough for any distance: only the header layout matters here.
  const header = readEntryHeader(raw, 0, Number.MAX_SAFE_INTEGER);
  if (header.code !== OFS_DELTA) throw new GitFormatError("pack: not an ofs-delta entry");
  if (baseOffset >= entryOffset) throw new GitFormatError("pack: an ofs-delta base must come before the delta");
  const prefix = encodeEntryHeader(OFS_DELTA, header.size);
  const distance = encodeOfsDistance(entryOffset - baseOffset);
  const data = raw.subarray(header.dataStart);
  const out = new Uint8Array(prefix.length + distance.length + data.length);
  out.set(prefix);
  out.set(distance, prefix.length);
  out.set(data, prefix.length + distance.length);
  return out;
}

/** Random access to a stored pack, e.g. R2 range reads. May return fewer bytes at the end of the pack. */
export type RangeReader = (offset: number, length: number) => Promise<Uint8Array>;

export interface StoredEntry {
  offset: number;
  /** Pack type code (1-4, 6 ofs-delta, 7 ref-delta). */
  code: number;
  /** Inflated size of the entry's data (the object, or the delta). */
  size: number;
  base?: EntryBase;
  /** The complete raw entry (header, base, compressed data), e.g. to copy into another pack. */
  raw: Uint8Array;
  /** Inflated data: the object body, or the delta instructions for 6 and 7. */
  data: Uint8Array;
}

export interface ReadEntryOptions {
  /** Where the entry ends, if known (the next entry's offset, from the index): one read instead of guessing. */
  end?: number;
  /** Bytes to read first when the end is unknown (default 64 KiB; grows as needed). */
  firstRead?: number;
}

/** Reads one raw entry at `offset` of a stored pack, inflating it to find where it ends. */
export async function readEntryAt(
  read: RangeReader,
  offset: number,
  options: ReadEntryOptions = {},
): Promise<StoredEntry> {
  let want = options.end !== undefined ? options.end - offset : (options.firstRead ?? 64 * 1024);
  let bytes = await read(offset, want);
  for (;;) {
    const atEnd = bytes.length < want;
    try {
      const header = readEntryHeader(bytes, 0, offset);
      const { data, consumed } = inflateAt(bytes, header.dataStart, header.size);
      const end = header.dataStart + consumed;
      return {
        offset,
        code: header.code,
        size: header.size,
        ...(header.base ? { base: header.base } : {}),
        raw: bytes.subarray(0, end),
        data,
      };
    } catch (error) {
      const truncated = error instanceof TruncatedInflateError || /truncated/.test(String(error));
      if (!truncated || atEnd) throw error;
    }
    // The zlib stream goes on: read more. The header's size bounds a sane stream, so aim past it at once.
    const sizeHint = tryDataSize(bytes, offset);
    const grow = Math.max(want, sizeHint + (sizeHint >> 4) + 256);
    const more = await read(offset + bytes.length, grow);
    const merged = new Uint8Array(bytes.length + more.length);
    merged.set(bytes);
    merged.set(more, bytes.length);
    want = bytes.length + grow;
    bytes = merged;
    if (more.length === 0) throw new GitFormatError(`pack entry at ${offset}: truncated`);
  }
}

function tryDataSize(bytes: Uint8Array, offset: number): number {
  try {
    return readEntryHeader(bytes, 0, offset).size;
  } catch {
    return 0;
  }
}

/**
 * Reads the object at `offset`: the raw entry plus the resolved body. Deltas are resolved through `resolveBase`
 * (which the storage implements, typically by calling readObjectAt again for an ofs base or looking up a ref base).
 */
export async function readObjectAt(
  read: RangeReader,
  offset: number,
  resolveBase: (base: EntryBase) => Promise<GitObject>,
  options: ReadEntryOptions = {},
): Promise<GitObject & { entry: StoredEntry }> {
  const entry = await readEntryAt(read, offset, options);
  if (!entry.base) return { type: objectTypeFromCode(entry.code) as ObjectType, body: entry.data, entry };
  const base = await resolveBase(entry.base);
  return { type: base.type, body: applyDelta(base.body, entry.data), entry };
}
