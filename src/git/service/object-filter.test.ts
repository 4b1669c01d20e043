import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OFS_DELTA, REF_DELTA } from "../objects/object";
import { readPackIndex } from "../pack/index-file";
import { fixtures } from "../pack/test-support";
import { ObjectStore } from "../storage/object-store";
import { indexKey, packKey } from "../storage/pack-files";
import { storedObjectSize } from "./object-filter";

describe("storedObjectSize (what blob:limit compares)", () => {
  it("equals the inflated size of every object of git's pack, deltas included", async () => {
    const pack = fixtures.repoPack();
    const index = readPackIndex(fixtures.repoIdx());
    const repository = `object-size-${crypto.randomUUID()}`;
    const row = { id: "fixture", objectCount: index.count, packBytes: pack.length, indexBytes: 0, duplicateObjects: 0 };
    await env.BLOBS.put(packKey(repository, row.id), pack);
    await env.BLOBS.put(indexKey(repository, row.id), fixtures.repoIdx());
    const store = await ObjectStore.open(env.BLOBS, repository, [row]);
    let deltas = 0;
    for (const { oid } of index.entries()) {
      const entry = await store.rawEntry(oid);
      if (entry?.code === OFS_DELTA || entry?.code === REF_DELTA) deltas++;
      expect(await storedObjectSize(store, oid)).toBe((await store.get(oid)).body.length);
    }
    expect(deltas).toBeGreaterThan(0);
    await expect(storedObjectSize(store, "0".repeat(40))).rejects.toThrow(/missing/);
  });
});
