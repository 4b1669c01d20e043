import { deflateSync, inflateSync, crc32 as zlibCrc32 } from "node:zlib";
import { bytesToHex } from "../../lib/hex";
import { GitFormatError } from "../objects/errors";
import { type ObjectType, OFS_DELTA, objectTypeFromCode, PackObjectCode, REF_DELTA } from "../objects/object";
import { OID_BYTES } from "../objects/oid";

/** Pack entries larger than this (inflated) are refused: a Worker cannot hold them anyway. */
export const MAX_ENTRY_SIZE = 1 << 30;

export type EntryBase = { offset: number } | { oid: string };

/** The header of one pack entry: type code and size varint, then the delta base for types 6 and 7. */
export interface EntryHeader {
  /** Pack type code: 1-4 objects, 6 ofs-delta, 7 ref-delta. */
  code: number;
  /** Inflated size of the entry's data (the object, or the delta for 6 and 7). */
  size: number;
  /** Offset of the zlib data, relative to the same origin as `offset`. */
  dataStart: number;
  /** For deltas: the absolute offset (ofs-delta) or object id (ref-delta) of the base. */
  base?: EntryBase;
}

/**
 * Parses the entry header at `pos` of `bytes`. `entryOffset` is the entry's offset in the pack, needed to turn an
 * ofs-delta's negative distance into an absolute offset (it equals `pos` when `bytes` is the whole pack).
 */
export function readEntryHeader(bytes: Uint8Array, pos: number, entryOffset = pos): EntryHeader {
  let p = pos;
  const next = () => {
    if (p >= bytes.length) throw new GitFormatError(`pack entry at ${entryOffset}: truncated header`);
    return bytes[p++] as number;
  };
  let byte = next();
  const code = (byte >> 4) & 7;
  let size = byte & 0x0f;
  let shift = 4;
  while (byte & 0x80) {
    byte = next();
    if (shift > 46) throw new GitFormatError(`pack entry at ${entryOffset}: size header too long`);
    size += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (size > MAX_ENTRY_SIZE) throw new GitFormatError(`pack entry at ${entryOffset}: size ${size} is too large`);
  if (code === OFS_DELTA) {
    byte = next();
    let distance = byte & 0x7f;
    while (byte & 0x80) {
      byte = next();
      distance = (distance + 1) * 128 + (byte & 0x7f);
      if (distance > entryOffset) break;
    }
    if (distance === 0 || distance > entryOffset) {
      throw new GitFormatError(`pack entry at ${entryOffset}: ofs-delta base outside the pack`);
    }
    return { code, size, dataStart: p, base: { offset: entryOffset - distance } };
  }
  if (code === REF_DELTA) {
    if (p + OID_BYTES > bytes.length) throw new GitFormatError(`pack entry at ${entryOffset}: truncated base id`);
    const oid = bytesToHex(bytes.subarray(p, p + OID_BYTES));
    return { code, size, dataStart: p + OID_BYTES, base: { oid } };
  }
  if (!objectTypeFromCode(code)) throw new GitFormatError(`pack entry at ${entryOffset}: invalid type ${code}`);
  return { code, size, dataStart: p };
}

/** The type and size varint that starts every entry. */
export function encodeEntryHeader(code: number, size: number): Uint8Array {
  const out: number[] = [];
  let rest = Math.floor(size / 16);
  let byte = (code << 4) | (size & 0x0f);
  while (rest > 0) {
    out.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  out.push(byte);
  return Uint8Array.from(out);
}

/** The ofs-delta distance encoding (big-endian base 128 with the "+1" bias of gitformat-pack). */
export function encodeOfsDistance(distance: number): Uint8Array {
  if (!Number.isSafeInteger(distance) || distance <= 0) throw new GitFormatError("ofs-delta distance must be > 0");
  const out = [distance & 0x7f];
  let rest = Math.floor(distance / 128);
  while (rest > 0) {
    rest -= 1;
    out.unshift(0x80 | (rest & 0x7f));
    rest = Math.floor(rest / 128);
  }
  return Uint8Array.from(out);
}

export interface Inflated {
  data: Uint8Array;
  /** Compressed bytes consumed: the entry ends at `start + consumed`. */
  consumed: number;
}

/** Thrown (as a GitFormatError) when the zlib stream runs past the bytes available. */
export class TruncatedInflateError extends GitFormatError {}

/**
 * Inflates one zlib stream starting at `start`, ignoring what follows it, and checks the inflated length against
 * the entry header. node:zlib reports the consumed input length; DecompressionStream would reject the trailing
 * bytes (the next entries). Errors name `reportedAt`, the data's offset in the pack when `bytes` is a window.
 */
export function inflateAt(bytes: Uint8Array, start: number, expectedSize: number, reportedAt = start): Inflated {
  // node:zlib's cost grows with the input it is handed, not just what it consumes: offer a window that holds any
  // sane stream for this size (zlib's deflateBound is ~size * 1.0004 + 13), and only retry with the rest if not.
  const window = expectedSize + (expectedSize >>> 3) + 64;
  if (start + window < bytes.length) {
    try {
      return inflateWindow(bytes.subarray(start, start + window), reportedAt, expectedSize);
    } catch (error) {
      if (!(error instanceof TruncatedInflateError)) throw error;
    }
  }
  return inflateWindow(bytes.subarray(start), reportedAt, expectedSize);
}

/** Above this size the fixed cost of `info: true` does not matter; below it, the Adler-32 search is faster. */
const SMALL_ENTRY = 32 * 1024;

function inflateWindow(input: Uint8Array, start: number, expectedSize: number): Inflated {
  const zlibError = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: string } | null)?.code;
    if (code === "Z_BUF_ERROR" || /unexpected end/i.test(message)) {
      return new TruncatedInflateError(`pack entry data at ${start}: truncated zlib stream`);
    }
    return new GitFormatError(`pack entry data at ${start}: ${message}`);
  };
  const checkSize = (data: Uint8Array) => {
    if (data.length !== expectedSize) {
      throw new GitFormatError(
        `pack entry data at ${start}: inflated to ${data.length} bytes, header says ${expectedSize}`,
      );
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  };
  const maxOutputLength = Math.max(expectedSize, 1);
  if (expectedSize >= SMALL_ENTRY) {
    let result: { buffer: Uint8Array; engine: { bytesWritten: number } };
    try {
      result = inflateSync(input, { info: true, maxOutputLength }) as unknown as typeof result;
    } catch (error) {
      throw zlibError(error);
    }
    return { data: checkSize(result.buffer), consumed: result.engine.bytesWritten };
  }
  // workerd's `inflateSync(…, { info: true })` costs ~60 µs per call, ten times a plain inflate: for small entries,
  // inflate plainly (trailing bytes are ignored) and find the end from the stream's Adler-32 trailer instead.
  let data: Uint8Array;
  try {
    data = checkSize(inflateSync(input, { maxOutputLength }));
  } catch (error) {
    throw error instanceof GitFormatError ? error : zlibError(error);
  }
  return { data, consumed: streamLength(input, data) };
}

/**
 * Length of the zlib stream at the start of `input`, which inflates to `data`: it ends with the big-endian Adler-32
 * of `data`, and `input` holds all of it (it inflated). The 4 bytes can also occur earlier by chance, so when they
 * occur more than once, a candidate is accepted only if the input cut there still inflates (a strict prefix of a
 * zlib stream never does). They nearly always occur once: that one is the end, with no second inflate.
 */
function streamLength(input: Uint8Array, data: Uint8Array): number {
  const sum = adler32(data);
  const b0 = sum >>> 24;
  const b1 = (sum >>> 16) & 0xff;
  const b2 = (sum >>> 8) & 0xff;
  const b3 = sum & 0xff;
  const candidates: number[] = [];
  for (let i = 2; i + 4 <= input.length; i++) {
    if (input[i] === b0 && input[i + 1] === b1 && input[i + 2] === b2 && input[i + 3] === b3) candidates.push(i + 4);
  }
  if (candidates.length === 1) return candidates[0] as number;
  for (const end of candidates) {
    try {
      inflateSync(input.subarray(0, end), { maxOutputLength: Math.max(data.length, 1) });
      return end;
    } catch {
      // a chance match inside the compressed data: keep looking
    }
  }
  throw new GitFormatError("pack entry data: zlib stream without its Adler-32 trailer");
}

export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  const length = data.length;
  for (let i = 0; i < length; ) {
    // 5552 is the most bytes that can be summed before b can overflow 2^32 (zlib's NMAX).
    const end = Math.min(i + 5552, length);
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

export function deflate(body: Uint8Array): Uint8Array {
  const out = deflateSync(body);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export function crc32(bytes: Uint8Array, previous = 0): number {
  return zlibCrc32(bytes, previous) >>> 0;
}

/** A complete entry for a whole object: header + deflated body. */
export function encodeObjectEntry(type: ObjectType, body: Uint8Array): Uint8Array {
  const header = encodeEntryHeader(PackObjectCode[type], body.length);
  const compressed = deflate(body);
  const out = new Uint8Array(header.length + compressed.length);
  out.set(header);
  out.set(compressed, header.length);
  return out;
}
