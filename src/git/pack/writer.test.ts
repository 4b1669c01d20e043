import { describe, expect, it } from "vitest";
import { GitFormatError } from "../objects/errors";
import { hashObject, type ObjectType, OFS_DELTA, REF_DELTA } from "../objects/object";
import { applyDelta, createDelta } from "./delta";
import { encodeEntryHeader, encodeOfsDistance, readEntryHeader } from "./entry";
import { readPackIndex } from "./index-file";
import { type GitObject, indexPack } from "./reader";
import { fixtures, memoryReader, streamBytes } from "./test-support";
import { readEntryAt, readObjectAt, rewriteOfsDelta, type WrittenEntry, writePack } from "./writer";

const text = (value: string) => new TextEncoder().encode(value);

describe("writePack", () => {
  it("streams a pack that indexes to the objects written, with matching offsets and CRCs", async () => {
    const objects: GitObject[] = [
      { type: "blob", body: text("hello\n") },
      { type: "blob", body: new Uint8Array(0) },
      { type: "blob", body: crypto.getRandomValues(new Uint8Array(50_000)) },
      { type: "tree", body: new Uint8Array(0) },
    ];
    const written: WrittenEntry[] = [];
    let checksum = "";
    const stream = writePack(objects.length, objects, {
      onEntry: (e) => written.push(e),
      onEnd: (c) => (checksum = c),
    });
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBe(objects.length + 2);
    const pack = Uint8Array.from(chunks.flatMap((c) => [...c]));
    const result = await indexPack(pack);
    expect(result.packChecksum).toBe(checksum);
    expect(result.entries.map((e) => e.oid)).toEqual(objects.map((o) => hashObject(o.type, o.body)));
    expect(result.entries.map(({ offset, crc32 }) => ({ offset, crc32 }))).toEqual(
      written.map(({ offset, crc32 }) => ({ offset, crc32 })),
    );
    expect(result.entries[0]?.oid).toBe("ce013625030ba8dba906f756967f9e9ca394464a");
  });

  it("accepts an async iterable and errors the stream when the count is wrong", async () => {
    async function* two() {
      yield { type: "blob" as ObjectType, body: text("a") };
      yield { type: "blob" as ObjectType, body: text("b") };
    }
    expect((await indexPack(await streamBytes(writePack(2, two())))).entries.length).toBe(2);
    await expect(streamBytes(writePack(3, two()))).rejects.toThrow(/3 objects announced, 2 written/);
    await expect(streamBytes(writePack(1, two()))).rejects.toThrow(/more than 1/);
  });

  it("copies the raw entries of git's pack, rewriting ofs-delta distances, into a valid new pack", async () => {
    const source = fixtures.repoPack();
    const idx = readPackIndex(fixtures.repoIdx());
    const byOffset = [...idx.entries()].sort((a, b) => a.offset - b.offset);
    const read = memoryReader(source);
    // Reverse order of the non-delta entries first, then the deltas: every offset changes.
    const raws = await Promise.all(byOffset.map((e) => readEntryAt(read, e.offset)));
    const whole = raws.filter((r) => !r.base).reverse();
    const deltas = raws.filter((r) => r.base);
    expect(deltas.some((d) => d.code === OFS_DELTA)).toBe(true);
    const indexOfOffset = new Map<number, number>();
    // Deltas must follow their base: sort deltas by chain depth.
    const depth = (offset: number): number => {
      const entry = raws.find((r) => r.offset === offset);
      return entry?.base && "offset" in entry.base ? 1 + depth(entry.base.offset) : 0;
    };
    deltas.sort((a, b) => depth(a.offset) - depth(b.offset));
    const ordered = [...whole, ...deltas];
    for (const [i, r] of ordered.entries()) indexOfOffset.set(r.offset, i);
    const inputs = ordered.map((r) =>
      r.base && "offset" in r.base
        ? { raw: r.raw, baseIndex: indexOfOffset.get(r.base.offset) as number }
        : { raw: r.raw },
    );
    const copy = await streamBytes(writePack(inputs.length, inputs));
    const result = await indexPack(copy);
    expect(new Set(result.entries.map((e) => e.oid))).toEqual(new Set(idx.oids()));
    expect(result.entries.map((e) => e.offset)).not.toEqual(byOffset.map((e) => e.offset));
  });

  it("refuses a raw ofs-delta without its base index, and a base that comes later", async () => {
    const raw = Uint8Array.from([...encodeEntryHeader(OFS_DELTA, 3), ...encodeOfsDistance(10), 0x78, 0x9c]);
    await expect(streamBytes(writePack(1, [{ raw }]))).rejects.toThrow(/baseIndex/);
    await expect(streamBytes(writePack(1, [{ raw, baseIndex: 0 }]))).rejects.toThrow(/not written yet/);
    expect(() => rewriteOfsDelta(raw, 100, 100)).toThrow(GitFormatError);
  });
});

describe("rewriteOfsDelta and the ofs distance encoding", () => {
  it("round-trips distances across varint boundaries", () => {
    for (const distance of [1, 127, 128, 129, 16511, 16512, 16513, 2 ** 31, 2 ** 40 + 3]) {
      const entryOffset = distance + 12;
      const raw = Uint8Array.from([...encodeEntryHeader(OFS_DELTA, 300), ...encodeOfsDistance(1), 0x78]);
      const rewritten = rewriteOfsDelta(raw, entryOffset, 12);
      const header = readEntryHeader(rewritten, 0, entryOffset);
      expect(header.base).toEqual({ offset: 12 });
      expect(header.size).toBe(300);
      expect(rewritten.at(-1)).toBe(0x78);
    }
  });
});

describe("readEntryAt / readObjectAt over a range reader", () => {
  it("reads every object of git's pack, resolving delta chains through the callback", async () => {
    const source = fixtures.repoPack();
    const idx = readPackIndex(fixtures.repoIdx());
    const read = memoryReader(source);
    const resolveAt = async (offset: number): Promise<GitObject> => {
      const { type, body } = await readObjectAt(read, offset, (base) => {
        if (!("offset" in base)) throw new Error("git's repack uses ofs-deltas");
        return resolveAt(base.offset);
      });
      return { type, body };
    };
    for (const { oid, offset, crc32 } of idx.entries()) {
      const object = await resolveAt(offset);
      expect(hashObject(object.type, object.body)).toBe(oid);
      const entry = await readEntryAt(read, offset);
      const { crc32: entryCrc } = await import("./entry");
      expect(entryCrc(entry.raw)).toBe(crc32);
    }
  });

  it("grows its reads for an entry larger than the first read, and uses one read when the end is known", async () => {
    const body = crypto.getRandomValues(new Uint8Array(60_000));
    const pack = await streamBytes(
      writePack(2, [
        { type: "blob", body },
        { type: "blob", body: text("x") },
      ]),
    );
    const read = memoryReader(pack);
    const entry = await readEntryAt(read, 12, { firstRead: 1000 });
    expect(entry.data).toEqual(body);
    expect(read.calls).toBe(2);
    const next = 12 + entry.raw.length;
    read.calls = 0;
    const again = await readEntryAt(read, 12, { end: next });
    expect(again.raw).toEqual(entry.raw);
    expect(read.calls).toBe(1);
    const small = await readEntryAt(read, next);
    expect(new TextDecoder().decode(small.data)).toBe("x");
  });

  it("grows its reads for a small compressible entry too", async () => {
    const body = text("a small file that compresses well\n".repeat(50));
    const pack = await streamBytes(writePack(1, [{ type: "blob", body }]));
    const read = memoryReader(pack);
    const entry = await readEntryAt(read, 12, { firstRead: 10 });
    expect(entry.data).toEqual(body);
    expect(entry.raw.length).toBe(pack.length - 12 - 20);
    expect(read.calls).toBe(2);
  });

  it("fails with GitFormatError on a truncated stored pack", async () => {
    const pack = await streamBytes(
      writePack(1, [{ type: "blob", body: crypto.getRandomValues(new Uint8Array(5000)) }]),
    );
    await expect(readEntryAt(memoryReader(pack.subarray(0, 3000)), 12)).rejects.toThrow(GitFormatError);
  });

  it("resolves a ref-delta written by hand", async () => {
    const base = text("the quick brown fox jumps over the lazy dog\n".repeat(20));
    const target = text(`${"the quick brown fox jumps over the lazy dog\n".repeat(10)}changed\n`);
    const baseOid = hashObject("blob", base);
    const delta = createDelta(base, target);
    const { deflate } = await import("./entry");
    const { oidToBytes } = await import("../objects/oid");
    const raw = Uint8Array.from([
      ...encodeEntryHeader(REF_DELTA, delta.length),
      ...oidToBytes(baseOid),
      ...deflate(delta),
    ]);
    const pack = await streamBytes(writePack(2, [{ type: "blob", body: base }, { raw }]));
    const indexed = await indexPack(pack);
    expect(indexed.entries.map((e) => e.oid)).toEqual([baseOid, hashObject("blob", target)]);
    const object = await readObjectAt(memoryReader(pack), indexed.entries[1]?.offset as number, async (b) => {
      expect(b).toEqual({ oid: baseOid });
      return { type: "blob", body: base };
    });
    expect(object.body).toEqual(applyDelta(base, delta));
    expect(object.type).toBe("blob");
  });
});
