import { GitFormatError } from "../objects/errors";

/** Largest object size accepted from a delta header: keeps a hostile header from allocating gigabytes. */
export const MAX_DELTA_RESULT = 1 << 30;

export interface DeltaHeader {
  baseSize: number;
  resultSize: number;
  /** Offset of the first instruction. */
  start: number;
}

/** Little-endian base-128 size (gitformat-pack "size encoding"), capped to a safe integer. */
function readSize(delta: Uint8Array, pos: number): [size: number, next: number] {
  let size = 0;
  let shift = 0;
  let byte: number;
  do {
    if (pos >= delta.length) throw new GitFormatError("delta: truncated size header");
    byte = delta[pos++] as number;
    if (shift > 49) throw new GitFormatError("delta: size header too long");
    size += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [size, pos];
}

export function readDeltaHeader(delta: Uint8Array): DeltaHeader {
  const [baseSize, afterBase] = readSize(delta, 0);
  const [resultSize, start] = readSize(delta, afterBase);
  return { baseSize, resultSize, start };
}

/**
 * Applies a git delta (copy-from-base and insert instructions) to `base`. Every size and range is checked, so a
 * malformed delta throws GitFormatError instead of reading or writing out of bounds.
 */
export function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  const { baseSize, resultSize, start } = readDeltaHeader(delta);
  if (baseSize !== base.length) {
    throw new GitFormatError(`delta: base size ${baseSize} does not match the base object (${base.length} bytes)`);
  }
  if (resultSize > MAX_DELTA_RESULT) throw new GitFormatError(`delta: result size ${resultSize} is too large`);
  // Each instruction byte yields at most 0x10000 bytes: refuse before allocating for a size the delta cannot reach.
  if (resultSize > (delta.length - start) * 0x10000) throw new GitFormatError("delta: result size cannot be reached");
  const out = new Uint8Array(resultSize);
  let outPos = 0;
  let pos = start;
  while (pos < delta.length) {
    const op = delta[pos++] as number;
    if (op & 0x80) {
      // Copy: bits 0-3 say which offset bytes follow, bits 4-6 which size bytes; a size of 0 means 0x10000.
      let offset = 0;
      let size = 0;
      for (let bit = 0; bit < 4; bit++) {
        if (op & (1 << bit)) {
          if (pos >= delta.length) throw new GitFormatError("delta: truncated copy instruction");
          offset += (delta[pos++] as number) * 2 ** (8 * bit);
        }
      }
      for (let bit = 0; bit < 3; bit++) {
        if (op & (0x10 << bit)) {
          if (pos >= delta.length) throw new GitFormatError("delta: truncated copy instruction");
          size |= (delta[pos++] as number) << (8 * bit);
        }
      }
      if (size === 0) size = 0x10000;
      if (offset + size > base.length) throw new GitFormatError("delta: copy outside the base object");
      if (outPos + size > resultSize) throw new GitFormatError("delta: result larger than its declared size");
      out.set(base.subarray(offset, offset + size), outPos);
      outPos += size;
    } else if (op !== 0) {
      if (pos + op > delta.length) throw new GitFormatError("delta: truncated insert instruction");
      if (outPos + op > resultSize) throw new GitFormatError("delta: result larger than its declared size");
      out.set(delta.subarray(pos, pos + op), outPos);
      outPos += op;
      pos += op;
    } else {
      throw new GitFormatError("delta: reserved instruction 0");
    }
  }
  if (outPos !== resultSize) throw new GitFormatError("delta: result smaller than its declared size");
  return out;
}

function writeSize(out: number[], size: number): void {
  let rest = size;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/**
 * A simple delta encoder: indexes 16-byte blocks of the base and greedily extends matches forward. Good for small
 * edits in text files; it does not try to find the smallest delta (git's encoder does better).
 */
export function createDelta(base: Uint8Array, target: Uint8Array): Uint8Array {
  const BLOCK = 16;
  const out: number[] = [];
  writeSize(out, base.length);
  writeSize(out, target.length);
  const index = new Map<number, number>();
  for (let i = 0; i + BLOCK <= base.length; i += BLOCK) {
    const key = blockKey(base, i, BLOCK);
    if (!index.has(key)) index.set(key, i);
  }
  let insertStart = 0;
  const flushInsert = (end: number) => {
    for (let i = insertStart; i < end; i += 127) {
      const n = Math.min(127, end - i);
      out.push(n);
      for (let j = 0; j < n; j++) out.push(target[i + j] as number);
    }
  };
  let pos = 0;
  while (pos + BLOCK <= target.length) {
    const candidate = index.get(blockKey(target, pos, BLOCK));
    if (candidate === undefined || !sameBytes(base, candidate, target, pos, BLOCK)) {
      pos++;
      continue;
    }
    let length = BLOCK;
    while (pos + length < target.length && candidate + length < base.length) {
      if (base[candidate + length] !== target[pos + length]) break;
      length++;
    }
    flushInsert(pos);
    let copied = 0;
    while (copied < length) {
      const size = Math.min(0x10000, length - copied);
      pushCopy(out, candidate + copied, size);
      copied += size;
    }
    pos += length;
    insertStart = pos;
  }
  flushInsert(target.length);
  return Uint8Array.from(out);
}

function pushCopy(out: number[], offset: number, size: number): void {
  let op = 0x80;
  const args: number[] = [];
  for (let bit = 0; bit < 4; bit++) {
    const byte = Math.floor(offset / 2 ** (8 * bit)) & 0xff;
    if (byte !== 0) {
      op |= 1 << bit;
      args.push(byte);
    }
  }
  const encodedSize = size === 0x10000 ? 0 : size;
  for (let bit = 0; bit < 3; bit++) {
    const byte = (encodedSize >> (8 * bit)) & 0xff;
    if (byte !== 0) {
      op |= 0x10 << bit;
      args.push(byte);
    }
  }
  out.push(op, ...args);
}

/** FNV-1a of a block: a number key avoids building a string per position. Collisions are checked by sameBytes. */
function blockKey(bytes: Uint8Array, at: number, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = at; i < at + length; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash >>> 0;
}

function sameBytes(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}
