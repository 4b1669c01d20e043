import { describe, expect, it } from "vitest";
import { thinHead } from "../../../test/fixtures/git/fixtures";
import { GitFormatError } from "../objects/errors";
import { hashObject, parseCommit, parseTree } from "../objects/object";
import { readPackIndex } from "./index-file";
import { type GitObject, indexPack } from "./reader";
import { deltaChainPack, fixtures, mixedBlobPack, smallBlobPack } from "./test-support";
import { completeThinPack } from "./thin";

async function repoObjects(): Promise<Map<string, GitObject>> {
  const objects = new Map<string, GitObject>();
  await indexPack(fixtures.repoPack(), { onObject: ({ oid, type, body }) => void objects.set(oid, { type, body }) });
  return objects;
}

describe("indexPack on a pack written by git (with ofs-deltas up to depth 4)", () => {
  it("finds every object with the oid, offset and CRC32 of git's own .idx", async () => {
    const idx = readPackIndex(fixtures.repoIdx());
    const result = await indexPack(fixtures.repoPack());
    expect(result.version).toBe(2);
    expect(result.packChecksum).toBe(idx.packChecksum);
    expect(result.externalBases).toEqual([]);
    const fromGit = [...idx.entries()].sort((a, b) => a.offset - b.offset);
    expect(result.entries.map(({ oid, offset, crc32 }) => ({ oid, offset, crc32 }))).toEqual(fromGit);
    expect(fromGit.length).toBe(65);
  });

  it("hands every object to onObject once, with a body that hashes to its oid", async () => {
    const seen = new Map<string, number>();
    const result = await indexPack(fixtures.repoPack(), {
      onObject: ({ oid, type, body }) => {
        expect(hashObject(type, body)).toBe(oid);
        seen.set(oid, (seen.get(oid) ?? 0) + 1);
      },
    });
    expect(seen.size).toBe(result.entries.length);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const types = new Set(result.entries.map((e) => e.type));
    expect(types).toEqual(new Set(["commit", "tree", "blob", "tag"]));
  });

  it("gives the same result when the base cache is too small to hold anything", async () => {
    const normal = await indexPack(fixtures.repoPack());
    const starved = await indexPack(fixtures.repoPack(), { cacheBytes: 1 });
    expect(starved.entries).toEqual(normal.entries);
  });

  it("lets onObject reject the pack (e.g. a commit that fails validation)", async () => {
    const failure = indexPack(fixtures.repoPack(), {
      onObject: ({ type, body }) => {
        if (type === "commit") parseCommit(body);
        if (type === "tree") parseTree(body);
        if (type === "commit") throw new Error("policy says no");
      },
    });
    await expect(failure).rejects.toThrow("policy says no");
  });

  it("rejects a pack whose trailer does not match", async () => {
    const pack = fixtures.repoPack();
    pack[pack.length - 1] = (pack[pack.length - 1] as number) ^ 1;
    await expect(indexPack(pack)).rejects.toThrow(/trailing checksum/);
  });

  it("rejects a bad signature and an unsupported version", async () => {
    const pack = fixtures.repoPack();
    const badVersion = pack.slice();
    badVersion[7] = 4;
    await expect(indexPack(badVersion)).rejects.toThrow(/unsupported version 4/);
    const badMagic = pack.slice();
    badMagic[0] = 0x51;
    await expect(indexPack(badMagic)).rejects.toThrow(/signature/);
  });
});

describe("thin packs", () => {
  it("resolves ref-deltas against external bases and reports them", async () => {
    const objects = await repoObjects();
    const asked: string[] = [];
    const result = await indexPack(fixtures.thinPack(), {
      loadExternal: async (oid) => {
        asked.push(oid);
        return objects.get(oid) ?? null;
      },
    });
    expect(asked.length).toBeGreaterThan(0);
    expect(result.externalBases).toEqual(asked);
    expect(result.entries.map((e) => e.oid)).toContain(thinHead);
  });

  it("fails with GitFormatError when a base is missing", async () => {
    await expect(indexPack(fixtures.thinPack())).rejects.toThrow(GitFormatError);
    await expect(indexPack(fixtures.thinPack(), { loadExternal: async () => null })).rejects.toThrow(/delta base/);
  });

  it("rejects an external base whose content does not match its id", async () => {
    const loadExternal = async () => ({ type: "blob" as const, body: new Uint8Array([1]) });
    await expect(indexPack(fixtures.thinPack(), { loadExternal })).rejects.toThrow(/corrupt/);
  });

  it("completeThinPack appends the bases so the pack indexes without any external help", async () => {
    const objects = await repoObjects();
    const thin = await indexPack(fixtures.thinPack(), { loadExternal: async (oid) => objects.get(oid) ?? null });
    const fixed = completeThinPack(
      fixtures.thinPack(),
      thin.externalBases.map((oid) => objects.get(oid) as GitObject),
    );
    const reindexed = await indexPack(fixed.pack);
    expect(reindexed.packChecksum).toBe(fixed.packChecksum);
    expect(reindexed.entries).toEqual([...thin.entries, ...fixed.appended]);
    expect(fixed.appended.map((e) => e.oid)).toEqual(thin.externalBases);
  });
});

/** The ids of blobs with these contents, and of what an index found. */
const idsOf = (bodies: readonly Uint8Array[]) => new Set(bodies.map((body) => hashObject("blob", body)));
const indexedIds = (result: { entries: readonly { oid: string }[] }) => new Set(result.entries.map((e) => e.oid));

// Sizes that exercise the indexer beyond the small fixture; how fast it goes is measured by
// bench/git/index-pack.ts, not here.
describe("large and deep packs", () => {
  it("indexes a multi-megabyte pack of incompressible, text and small blobs", async () => {
    const { pack, contents } = await mixedBlobPack();
    expect(pack.length).toBeGreaterThan(4_000_000);
    expect(indexedIds(await indexPack(pack))).toEqual(idsOf(contents));
  });

  it("indexes ten thousand small objects", async () => {
    const { pack, contents } = await smallBlobPack(10_000);
    const result = await indexPack(pack);
    expect(result.entries).toHaveLength(10_000);
    expect(indexedIds(result)).toEqual(idsOf(contents));
  });

  it("resolves ofs-delta chains ten deep to the exact contents of every version", async () => {
    const { pack, contents } = await deltaChainPack(20, 10);
    const result = await indexPack(pack);
    expect(result.entries).toHaveLength(220);
    expect(indexedIds(result)).toEqual(idsOf(contents));
  });
});

describe("limits", () => {
  it("refuses objects and delta results above maxObjectSize", async () => {
    await expect(indexPack(fixtures.repoPack(), { maxObjectSize: 10_000 })).rejects.toThrow(/too large/);
    await expect(indexPack(fixtures.repoPack(), { maxObjectSize: 1_000 })).rejects.toThrow(GitFormatError);
    // A small delta that expands its 5 kB base to 20 kB: only the delta's header tells the result size.
    const { writePack } = await import("./writer");
    const { streamBytes } = await import("./test-support");
    const { createDelta } = await import("./delta");
    const { deflate, encodeEntryHeader, encodeOfsDistance } = await import("./entry");
    const { OFS_DELTA } = await import("../objects/object");
    const base = new TextEncoder().encode("0123456789".repeat(500));
    const target = Uint8Array.from([...base, ...base, ...base, ...base]);
    const delta = createDelta(base, target);
    const raw = Uint8Array.from([
      ...encodeEntryHeader(OFS_DELTA, delta.length),
      ...encodeOfsDistance(1),
      ...deflate(delta),
    ]);
    const pack = await streamBytes(
      writePack(2, [
        { type: "blob", body: base },
        { raw, baseIndex: 0 },
      ]),
    );
    expect((await indexPack(pack)).entries[1]?.size).toBe(20_000);
    await expect(indexPack(pack, { maxObjectSize: 10_000 })).rejects.toThrow(/delta result is too large/);
  });
});

describe("delta ordering", () => {
  const encoder = new TextEncoder();
  const base = encoder.encode("shared content line\n".repeat(50));
  const middle = encoder.encode(`${"shared content line\n".repeat(40)}middle\n`);
  const top = encoder.encode(`${"shared content line\n".repeat(30)}middle\ntop\n`);

  async function refDelta(from: Uint8Array, to: Uint8Array): Promise<Uint8Array> {
    const { createDelta } = await import("./delta");
    const { deflate, encodeEntryHeader } = await import("./entry");
    const { oidToBytes } = await import("../objects/oid");
    const { REF_DELTA } = await import("../objects/object");
    const delta = createDelta(from, to);
    return Uint8Array.from([
      ...encodeEntryHeader(REF_DELTA, delta.length),
      ...oidToBytes(hashObject("blob", from)),
      ...deflate(delta),
    ]);
  }

  async function packOf(inputs: import("./writer").PackWriterInput[]): Promise<Uint8Array> {
    const { writePack } = await import("./writer");
    const { streamBytes } = await import("./test-support");
    return streamBytes(writePack(inputs.length, inputs));
  }

  it("resolves ref-deltas whose base comes later in the pack, and chains of ref-deltas", async () => {
    const pack = await packOf([
      { raw: await refDelta(middle, top) },
      { raw: await refDelta(base, middle) },
      { type: "blob", body: base },
    ]);
    const order: string[] = [];
    const result = await indexPack(pack, { onObject: ({ oid }) => void order.push(oid) });
    const ids = [base, middle, top].map((body) => hashObject("blob", body));
    expect(order).toEqual(ids);
    expect(result.entries.map((e) => e.oid)).toEqual([ids[2], ids[1], ids[0]]);
    expect(result.entries.map((e) => e.size)).toEqual([top.length, middle.length, base.length]);
  });

  it("rejects ref-deltas that only refer to each other", async () => {
    const pack = await packOf([{ raw: await refDelta(middle, top) }, { raw: await refDelta(top, middle) }]);
    await expect(indexPack(pack)).rejects.toThrow(GitFormatError);
  });
});

/** A pack as a stream of `size`-byte chunks, and a sink that keeps what it is given (like R2 would). */
function chunked(pack: Uint8Array, size: number) {
  let at = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= pack.length) return controller.close();
      controller.enqueue(pack.slice(at, at + size));
      at += size;
    },
  });
  const written: Uint8Array[] = [];
  let stored: Uint8Array | null = null;
  let reads = 0;
  const sink = {
    write: (bytes: Uint8Array) => void written.push(bytes.slice()),
    finish: async () => {
      const { concatBytes } = await import("../../lib/bytes");
      stored = concatBytes(written);
      return stored.length;
    },
    read: async (offset: number, length: number) => {
      reads++;
      return (stored as Uint8Array).subarray(offset, offset + length);
    },
  };
  return { source, sink, stored: () => stored, reads: () => reads };
}

describe("streamed packs", () => {
  it.each([1, 7, 4096, 1 << 20])("indexes a pack arriving in %i-byte chunks exactly as in memory", async (size) => {
    const whole = await indexPack(fixtures.repoPack());
    const { source, sink, stored } = chunked(fixtures.repoPack(), size);
    const streamed = await indexPack(source, { sink });
    expect(streamed).toEqual(whole);
    expect(stored()).toEqual(fixtures.repoPack());
  });

  it("reads deltas whose base was evicted back from the sink, with the same result", async () => {
    const { pack, contents } = await deltaChainPack(20, 10);
    const { source, sink, reads } = chunked(pack, 1000);
    const result = await indexPack(source, { sink, cacheBytes: 1 });
    expect(indexedIds(result)).toEqual(idsOf(contents));
    expect(reads()).toBeGreaterThan(0);
  });

  it("refuses a stream that ends early, or carries bytes after the trailer", async () => {
    const pack = fixtures.repoPack();
    const cut = chunked(pack.subarray(0, pack.length - 5), 100);
    await expect(indexPack(cut.source, { sink: cut.sink })).rejects.toThrow(/truncated/);
    const longer = chunked(Uint8Array.from([...pack, 0]), 100);
    await expect(indexPack(longer.source, { sink: longer.sink })).rejects.toThrow(/after the last object/);
  });

  it("needs a sink for a stream", async () => {
    await expect(indexPack(chunked(fixtures.repoPack(), 10).source)).rejects.toThrow(/sink/);
  });
});
