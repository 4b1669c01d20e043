import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GitFormatError } from "../objects/errors";
import { applyDelta, createDelta, readDeltaHeader } from "./delta";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("applyDelta", () => {
  it("applies copy and insert instructions", () => {
    const base = bytes("hello, world");
    // base size 12, result size 13; copy offset 0 size 7 ("hello, "); insert "there"; copy offset 11 size 1 ("d")?
    const delta = Uint8Array.from([12, 13, 0x90, 7, 5, ...bytes("there"), 0x91, 11, 1]);
    expect(new TextDecoder().decode(applyDelta(base, delta))).toBe("hello, thered");
  });

  it("treats a copy size of 0 as 0x10000 and reads multi-byte offsets", () => {
    const base = new Uint8Array(0x10100).map((_, i) => i & 0xff);
    // copy offset 0x100 (byte 1 only), size omitted => 0x10000
    const delta = Uint8Array.from([0x80, 0x82, 0x04, 0x80, 0x80, 0x04, 0x82, 0x01]);
    const out = applyDelta(base, delta);
    expect(out.length).toBe(0x10000);
    expect(out).toEqual(base.subarray(0x100, 0x10100));
  });

  it("rejects malformed deltas with GitFormatError", () => {
    const base = bytes("abc");
    const cases: [number[], RegExp][] = [
      [[4, 1, 1, 0x61], /base size/],
      [[3, 2, 0x91, 2, 2], /outside the base/],
      [[3, 1, 2, 0x61, 0x62], /larger than/],
      [[3, 3, 1, 0x61], /smaller than/],
      [[3, 1, 0], /reserved/],
      [[3, 1, 5, 0x61], /truncated insert/],
      [[3, 1, 0x91], /truncated copy/],
      [[3], /truncated size/],
      [[0x83], /truncated size/],
    ];
    for (const [delta, message] of cases) {
      expect(() => applyDelta(base, Uint8Array.from(delta))).toThrow(GitFormatError);
      expect(() => applyDelta(base, Uint8Array.from(delta))).toThrow(message);
    }
  });

  it("only ever succeeds or throws GitFormatError on random input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (base, delta) => {
        try {
          const out = applyDelta(base, delta);
          expect(out.length).toBe(readDeltaHeader(delta).resultSize);
        } catch (error) {
          expect(error).toBeInstanceOf(GitFormatError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("createDelta", () => {
  it("round-trips through applyDelta for random edits", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 8 }),
        (base, edits) => {
          let target = base;
          for (const [at, remove, insert] of edits) {
            const pos = target.length === 0 ? 0 : at % target.length;
            target = Uint8Array.from([...target.subarray(0, pos), ...insert, ...target.subarray(pos + remove)]);
          }
          expect(applyDelta(base, createDelta(base, target))).toEqual(target);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("is much smaller than the target for a small edit of a large text", () => {
    const base = bytes("a line of text that repeats with a counter\n".repeat(2000));
    const target = Uint8Array.from([...base.subarray(0, 40000), ...bytes("inserted!\n"), ...base.subarray(40000)]);
    const delta = createDelta(base, target);
    expect(applyDelta(base, delta)).toEqual(target);
    expect(delta.length).toBeLessThan(200);
  });
});
