import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { adler32, inflateAt } from "./entry";

/** A zlib stream holding `data` in one stored (uncompressed) block: the data appears in it byte for byte. */
function storedZlib(data: Uint8Array): Uint8Array {
  const sum = adler32(data);
  const out = new Uint8Array(2 + 5 + data.length + 4);
  out.set([0x78, 0x01, 0x01, data.length & 0xff, data.length >> 8, ~data.length & 0xff, (~data.length >> 8) & 0xff]);
  out.set(data, 7);
  new DataView(out.buffer).setUint32(7 + data.length, sum);
  return out;
}

/**
 * Data whose last 4 bytes are its own Adler-32: stored in a zlib stream, those bytes occur inside the
 * stream as well as at its end. Solved for the last 4 bytes, trying prefixes until one has a solution.
 */
function dataEndingInItsOwnAdler(): Uint8Array {
  const MOD = 65521;
  const inverse255 = (() => {
    for (let x = 1; x < MOD; x++) if ((255 * x) % MOD === 1) return x;
    throw new Error("no inverse");
  })();
  for (let seed = 0; seed < 256; seed++) {
    const prefix = Uint8Array.from({ length: 36 }, (_, i) => (i * 37 + seed) & 255);
    const n = prefix.length + 4;
    let sum = 0;
    let weighted = 0;
    prefix.forEach((byte, i) => {
      sum += byte;
      weighted += (n - i) * byte;
    });
    for (let p0 = 0; p0 < 256; p0++) {
      for (let p1 = 0; p1 < 256; p1++) {
        // A = 256·p2 + p3 and A = 1 + sum + p0 + p1 + p2 + p3  =>  255·p2 = 1 + sum + p0 + p1
        const p2 = (((1 + sum + p0 + p1) % MOD) * inverse255) % MOD;
        if (p2 > 255) continue;
        // B = 256·p0 + p1 and B = n + weighted + 4·p0 + 3·p1 + 2·p2 + p3
        const p3 = (((252 * p0 - 2 * p1 - 2 * p2 - n - weighted) % MOD) + MOD) % MOD;
        if (p3 > 255) continue;
        const data = Uint8Array.from([...prefix, p0, p1, p2, p3]);
        const sum32 = adler32(data);
        if (sum32 === ((p0 << 24) | (p1 << 16) | (p2 << 8) | p3) >>> 0) return data;
      }
    }
  }
  throw new Error("no data found");
}

describe("inflateAt", () => {
  it("finds where a small entry's zlib stream ends, whatever follows it", () => {
    const body = new TextEncoder().encode("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n".repeat(3));
    const stream = new Uint8Array(deflateSync(body));
    const next = Uint8Array.from({ length: 300 }, (_, i) => (i * 13) & 255);
    const { data, consumed } = inflateAt(Uint8Array.from([9, 9, ...stream, ...next]), 2, body.length);
    expect(data).toEqual(body);
    expect(consumed).toBe(stream.length);
  });

  it("is not fooled when the stream's Adler-32 also occurs inside it or after it", () => {
    const data = dataEndingInItsOwnAdler();
    const stream = storedZlib(data);
    const trailer = stream.subarray(stream.length - 4);
    // Inside: the stored data ends with the same 4 bytes as the stream. After: the next entry repeats them.
    expect(stream.subarray(7 + data.length - 4, 7 + data.length)).toEqual(trailer);
    const input = Uint8Array.from([...stream, 1, 2, ...trailer, 3]);
    const { data: inflated, consumed } = inflateAt(input, 0, data.length);
    expect(inflated).toEqual(data);
    expect(consumed).toBe(stream.length);
  });

  it("refuses a stream that inflates to another size than its header says", () => {
    const stream = new Uint8Array(deflateSync(new Uint8Array(10)));
    expect(() => inflateAt(stream, 0, 11)).toThrow(/inflated to 10 bytes, header says 11/);
  });
});
