// Hostile input: every parser must either succeed or throw GitFormatError — never another exception, never hang.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GitFormatError } from "../objects/errors";
import { parseCommit, parseTag, parseTree } from "../objects/object";
import { applyDelta } from "./delta";
import { readPackIndex } from "./index-file";
import { type GitObject, indexPack } from "./reader";
import { fixtures, memoryReader } from "./test-support";
import { readEntryAt } from "./writer";

function expectFormatErrorOrSuccess(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    if (!(error instanceof GitFormatError)) throw error;
  }
}

async function expectFormatErrorOrSuccessAsync(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof GitFormatError)) throw error;
  }
}

/** A valid header and trailer around random bytes, so the fuzzing reaches the entry parser. */
async function withValidFrame(body: Uint8Array, count: number): Promise<Uint8Array> {
  const pack = new Uint8Array(12 + body.length + 20);
  pack.set([0x50, 0x41, 0x43, 0x4b, 0, 0, 0, 2]);
  new DataView(pack.buffer).setUint32(8, count);
  pack.set(body, 12);
  const { createHash } = await import("node:crypto");
  pack.set(
    createHash("sha1")
      .update(pack.subarray(0, 12 + body.length))
      .digest(),
    12 + body.length,
  );
  return pack;
}

describe("fuzzing the pack reader", () => {
  const external = async (oid: string): Promise<GitObject | null> =>
    oid.startsWith("0") ? { type: "blob", body: new Uint8Array([1, 2, 3]) } : null;

  it("random bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        await expectFormatErrorOrSuccessAsync(() => indexPack(bytes, { loadExternal: external }));
      }),
      { numRuns: 500 },
    );
  });

  it("random entries inside a valid frame (header and checksum)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 20 }), async (body, count) => {
        const pack = await withValidFrame(body, count);
        await expectFormatErrorOrSuccessAsync(() => indexPack(pack, { loadExternal: external }));
      }),
      { numRuns: 500 },
    );
  });

  it("truncated copies of a real pack", async () => {
    const pack = fixtures.repoPack();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: pack.length - 1 }), async (length) => {
        await expect(indexPack(pack.subarray(0, length))).rejects.toThrow(GitFormatError);
      }),
      { numRuns: 200 },
    );
  });

  it("bit flips in a real pack, with the checksum fixed up so the entries themselves are parsed", async () => {
    const pack = fixtures.repoPack();
    const body = pack.subarray(12, pack.length - 20);
    const count = new DataView(pack.buffer, pack.byteOffset).getUint32(8);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: body.length - 1 }), fc.integer({ min: 0, max: 7 })), {
          minLength: 1,
          maxLength: 4,
        }),
        async (flips) => {
          const mutated = body.slice();
          for (const [at, bit] of flips) mutated[at] = (mutated[at] as number) ^ (1 << bit);
          const framed = await withValidFrame(mutated, count);
          await expectFormatErrorOrSuccessAsync(() => indexPack(framed, { cacheBytes: 4096 }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("bit flips without fixing the checksum are always rejected", async () => {
    const pack = fixtures.repoPack();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: pack.length - 1 }), fc.integer({ min: 0, max: 7 }), async (at, bit) => {
        const mutated = pack.slice();
        mutated[at] = (mutated[at] as number) ^ (1 << bit);
        await expect(indexPack(mutated)).rejects.toThrow(GitFormatError);
      }),
      { numRuns: 200 },
    );
  });

  it("readEntryAt on random offsets and random bytes", async () => {
    const pack = fixtures.repoPack();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: pack.length }), fc.uint8Array({ maxLength: 100 }), async (offset, junk) => {
        await expectFormatErrorOrSuccessAsync(() => readEntryAt(memoryReader(pack), offset, { firstRead: 64 }));
        await expectFormatErrorOrSuccessAsync(() => readEntryAt(memoryReader(junk), 0));
      }),
      { numRuns: 300 },
    );
  });
});

describe("fuzzing the object parsers, the delta applier and the index reader", () => {
  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 100 }), (bytes, other) => {
        expectFormatErrorOrSuccess(() => parseCommit(bytes));
        expectFormatErrorOrSuccess(() => parseTag(bytes));
        expectFormatErrorOrSuccess(() => parseTree(bytes));
        expectFormatErrorOrSuccess(() => applyDelta(other, bytes));
        expectFormatErrorOrSuccess(() => readPackIndex(bytes).lookup("a".repeat(40)));
      }),
      { numRuns: 2000 },
    );
  });

  it("text that looks like objects", () => {
    const line = fc.oneof(
      fc.constantFrom("tree ", "parent ", "author ", "committer ", "object ", "type ", "tag ", "tagger ", " ", ""),
      fc.string({ maxLength: 50 }),
    );
    const textual = fc
      .array(fc.tuple(line, fc.string({ maxLength: 60 })), { maxLength: 8 })
      .map((lines) => new TextEncoder().encode(lines.map(([a, b]) => a + b).join("\n")));
    fc.assert(
      fc.property(textual, (bytes) => {
        expectFormatErrorOrSuccess(() => parseCommit(bytes));
        expectFormatErrorOrSuccess(() => parseTag(bytes));
        expectFormatErrorOrSuccess(() => parseTree(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it("bit flips in a real index", () => {
    const idx = fixtures.repoIdx();
    fc.assert(
      fc.property(fc.nat({ max: idx.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const mutated = idx.slice();
        mutated[at] = (mutated[at] as number) ^ (1 << bit);
        expectFormatErrorOrSuccess(() => {
          const parsed = readPackIndex(mutated);
          for (const entry of parsed.entries()) parsed.lookup(entry.oid);
        });
      }),
      { numRuns: 300 },
    );
  });
});
