import { createHash } from "node:crypto";
import { bytesToHex } from "../../lib/hex";
import { GitFormatError } from "../objects/errors";
import { OID_BYTES, oidToBytes } from "../objects/oid";

const IDX_MAGIC = 0xff744f63; // "\377tOc"
const IDX_VERSION = 2;
const FANOUT_BYTES = 256 * 4;
const HEADER_BYTES = 8;
/** Offsets above this go to the 64-bit table, as git's index-pack does (pack.indexVersion=2 default). */
const MAX_SMALL_OFFSET = 0x7fffffff;

export interface IndexEntry {
  oid: string;
  offset: number;
  crc32: number;
}

/**
 * Writes a `.idx` version 2: header, fanout, sorted ids, CRC32s, 4-byte offsets (MSB set = index into the 8-byte
 * offset table), the 8-byte table, the pack checksum and the SHA-1 of all of it. Same bytes as `git index-pack`.
 */
export function writePackIndex(entries: readonly IndexEntry[], packChecksum: string): Uint8Array {
  const sorted = entries
    .map((entry) => ({ ...entry, raw: oidToBytes(entry.oid) }))
    .sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const count = sorted.length;
  const large = sorted.filter((entry) => entry.offset > MAX_SMALL_OFFSET).length;
  const size = HEADER_BYTES + FANOUT_BYTES + count * (OID_BYTES + 8) + large * 8 + 2 * OID_BYTES;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, IDX_MAGIC);
  view.setUint32(4, IDX_VERSION);

  const fanout = new Uint32Array(256);
  for (const entry of sorted) {
    const bucket = entry.raw[0] as number;
    fanout[bucket] = (fanout[bucket] as number) + 1;
  }
  let running = 0;
  for (let i = 0; i < 256; i++) {
    running += fanout[i] as number;
    view.setUint32(HEADER_BYTES + i * 4, running);
  }

  const oidsAt = HEADER_BYTES + FANOUT_BYTES;
  const crcAt = oidsAt + count * OID_BYTES;
  const offsetsAt = crcAt + count * 4;
  const largeAt = offsetsAt + count * 4;
  let largeIndex = 0;
  sorted.forEach((entry, i) => {
    if (i > 0 && entry.oid === sorted[i - 1]?.oid) throw new GitFormatError(`idx: duplicate object ${entry.oid}`);
    if (!Number.isSafeInteger(entry.offset) || entry.offset < 0) throw new GitFormatError("idx: invalid offset");
    out.set(entry.raw, oidsAt + i * OID_BYTES);
    view.setUint32(crcAt + i * 4, entry.crc32 >>> 0);
    if (entry.offset > MAX_SMALL_OFFSET) {
      view.setUint32(offsetsAt + i * 4, (0x80000000 | largeIndex) >>> 0);
      view.setUint32(largeAt + largeIndex * 8, Math.floor(entry.offset / 2 ** 32));
      view.setUint32(largeAt + largeIndex * 8 + 4, entry.offset >>> 0);
      largeIndex++;
    } else {
      view.setUint32(offsetsAt + i * 4, entry.offset);
    }
  });
  const checksumAt = largeAt + large * 8;
  out.set(oidToBytes(packChecksum), checksumAt);
  out.set(
    createHash("sha1")
      .update(out.subarray(0, checksumAt + OID_BYTES))
      .digest(),
    checksumAt + OID_BYTES,
  );
  return out;
}

/** A parsed `.idx` v2, read in place (no copy of the tables). */
export class PackIndex {
  readonly count: number;
  readonly packChecksum: string;
  private readonly view: DataView;
  private readonly oidsAt: number;
  private readonly crcAt: number;
  private readonly offsetsAt: number;
  private readonly largeAt: number;
  private readonly largeCount: number;

  constructor(private readonly bytes: Uint8Array) {
    if (bytes.length < HEADER_BYTES + FANOUT_BYTES + 2 * OID_BYTES) throw new GitFormatError("idx: too short");
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.view.getUint32(0) !== IDX_MAGIC) throw new GitFormatError("idx: not a version 2 index (bad magic)");
    if (this.view.getUint32(4) !== IDX_VERSION) throw new GitFormatError("idx: unsupported version");
    let previous = 0;
    for (let i = 0; i < 256; i++) {
      const value = this.view.getUint32(HEADER_BYTES + i * 4);
      if (value < previous) throw new GitFormatError("idx: fanout table is not monotonic");
      previous = value;
    }
    this.count = previous;
    this.oidsAt = HEADER_BYTES + FANOUT_BYTES;
    this.crcAt = this.oidsAt + this.count * OID_BYTES;
    this.offsetsAt = this.crcAt + this.count * 4;
    this.largeAt = this.offsetsAt + this.count * 4;
    const rest = bytes.length - this.largeAt - 2 * OID_BYTES;
    if (rest < 0 || rest % 8 !== 0) throw new GitFormatError("idx: size does not match the object count");
    this.largeCount = rest / 8;
    const checksumAt = bytes.length - 2 * OID_BYTES;
    this.packChecksum = bytesToHex(bytes.subarray(checksumAt, checksumAt + OID_BYTES));
  }

  /** Checks the trailing SHA-1 of the index itself. */
  verify(): boolean {
    const end = this.bytes.length - OID_BYTES;
    const actual = createHash("sha1").update(this.bytes.subarray(0, end)).digest("hex");
    return actual === bytesToHex(this.bytes.subarray(end));
  }

  oidAt(i: number): string {
    return bytesToHex(this.bytes.subarray(this.oidsAt + i * OID_BYTES, this.oidsAt + (i + 1) * OID_BYTES));
  }

  crc32At(i: number): number {
    return this.view.getUint32(this.crcAt + i * 4);
  }

  offsetAt(i: number): number {
    const small = this.view.getUint32(this.offsetsAt + i * 4);
    if (!(small & 0x80000000)) return small;
    const slot = small & 0x7fffffff;
    if (slot >= this.largeCount) throw new GitFormatError("idx: large offset outside its table");
    return this.view.getUint32(this.largeAt + slot * 8) * 2 ** 32 + this.view.getUint32(this.largeAt + slot * 8 + 4);
  }

  /** Position of `oid` in the sorted table, or -1: binary search within its fanout bucket. */
  find(oid: string): number {
    const raw = oidToBytes(oid);
    const first = raw[0] as number;
    let lo = first === 0 ? 0 : this.view.getUint32(HEADER_BYTES + (first - 1) * 4);
    let hi = this.view.getUint32(HEADER_BYTES + first * 4);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = this.compareAt(mid, raw);
      if (cmp === 0) return mid;
      if (cmp < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  lookup(oid: string): number | undefined {
    const i = this.find(oid);
    return i < 0 ? undefined : this.offsetAt(i);
  }

  *oids(): IterableIterator<string> {
    for (let i = 0; i < this.count; i++) yield this.oidAt(i);
  }

  *entries(): IterableIterator<IndexEntry> {
    for (let i = 0; i < this.count; i++) yield { oid: this.oidAt(i), offset: this.offsetAt(i), crc32: this.crc32At(i) };
  }

  private compareAt(i: number, raw: Uint8Array): number {
    const at = this.oidsAt + i * OID_BYTES;
    for (let k = 0; k < OID_BYTES; k++) {
      const diff = (this.bytes[at + k] as number) - (raw[k] as number);
      if (diff !== 0) return diff;
    }
    return 0;
  }
}

export function readPackIndex(bytes: Uint8Array): PackIndex {
  return new PackIndex(bytes);
}
