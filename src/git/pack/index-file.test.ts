import { describe, expect, it } from "vitest";
import { GitFormatError } from "../objects/errors";
import { readPackIndex, writePackIndex } from "./index-file";
import { indexPack } from "./reader";
import { fixtures } from "./test-support";

describe("pack .idx v2", () => {
  it("writes the same bytes as git index-pack for the same pack", async () => {
    const { entries, packChecksum } = await indexPack(fixtures.repoPack());
    const written = writePackIndex(entries, packChecksum);
    expect(written).toEqual(fixtures.repoIdx());
  });

  it("looks up every object of git's index and misses unknown ids", () => {
    const idx = readPackIndex(fixtures.repoIdx());
    expect(idx.verify()).toBe(true);
    const entries = [...idx.entries()];
    expect(entries.length).toBe(idx.count);
    expect([...idx.oids()]).toEqual([...entries.map((e) => e.oid)].sort());
    for (const entry of entries) expect(idx.lookup(entry.oid)).toBe(entry.offset);
    expect(idx.lookup("0".repeat(40))).toBeUndefined();
    expect(idx.lookup("f".repeat(40))).toBeUndefined();
    const first = entries[0]?.oid as string;
    expect(idx.lookup(`${first.slice(0, 39)}${first[39] === "0" ? "1" : "0"}`)).toBeUndefined();
  });

  it("puts offsets beyond 2 GiB in the 8-byte table", () => {
    const entries = [
      { oid: "a".repeat(40), offset: 12, crc32: 1 },
      { oid: "b".repeat(40), offset: 0x80000000, crc32: 0xffffffff },
      { oid: "0".repeat(40), offset: 5 * 2 ** 32 + 7, crc32: 3 },
      { oid: "c".repeat(40), offset: 0x7fffffff, crc32: 4 },
    ];
    const bytes = writePackIndex(entries, "d".repeat(40));
    expect(bytes.length).toBe(8 + 1024 + 4 * 28 + 2 * 8 + 40);
    const idx = readPackIndex(bytes);
    expect(idx.verify()).toBe(true);
    expect(idx.packChecksum).toBe("d".repeat(40));
    for (const entry of entries) expect(idx.lookup(entry.oid)).toBe(entry.offset);
    expect(new Set(idx.entries())).toEqual(new Set(entries));
  });

  it("writes an empty index", () => {
    const idx = readPackIndex(writePackIndex([], "e".repeat(40)));
    expect(idx.count).toBe(0);
    expect(idx.lookup("a".repeat(40))).toBeUndefined();
  });

  it("rejects duplicates when writing and malformed indexes when reading", () => {
    const twice = [
      { oid: "a".repeat(40), offset: 12, crc32: 0 },
      { oid: "a".repeat(40), offset: 40, crc32: 0 },
    ];
    expect(() => writePackIndex(twice, "d".repeat(40))).toThrow(GitFormatError);
    const good = fixtures.repoIdx();
    expect(() => readPackIndex(good.subarray(0, 500))).toThrow(GitFormatError);
    expect(() => readPackIndex(good.subarray(0, good.length - 4))).toThrow(/size/);
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => readPackIndex(badMagic)).toThrow(/magic/);
    const flipped = good.slice();
    flipped[2000] = (flipped[2000] as number) ^ 0xff;
    expect(readPackIndex(flipped).verify()).toBe(false);
  });
});
