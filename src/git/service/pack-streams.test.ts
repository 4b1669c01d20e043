import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { indexPack } from "../pack/reader";
import { smallBlobPack } from "../pack/test-support";
import { decodePkts, readAllBytes } from "../protocol/pkt-line";
import { demuxSideBand, SIDE_BAND_64K_MAX_DATA, SIDE_BAND_MAX_DATA } from "../protocol/side-band";
import { putPackFiles } from "../storage/pack-files";
import type { PackRow } from "../storage/repositories";
import { concatenatedPacks, sideBandStoredPacks } from "./pack-streams";

const repositoryId = "pack-streams-test";

async function stored(id: string, pack: Uint8Array): Promise<PackRow> {
  const indexed = await indexPack(pack);
  await putPackFiles(env.BLOBS, repositoryId, id, pack, new Uint8Array(0));
  return {
    id,
    objectCount: indexed.entries.length,
    packBytes: pack.length,
    indexBytes: 0,
    duplicateObjects: 0,
  };
}

describe("stored packs sent to a full clone", () => {
  it("sends a single stored pack as it is, in frames of at most 65515 bytes, then a flush", async () => {
    const { pack } = await smallBlobPack(6000);
    const row = await stored("single", pack);
    const wire = await readAllBytes(
      sideBandStoredPacks(env.BLOBS, repositoryId, [row], "side-band-64k", {
        progress: ["sending\n"],
        endWithFlush: true,
      }),
    );
    const demuxed = demuxSideBand(decodePkts(wire));
    expect(demuxed.data).toEqual(pack);
    expect(demuxed.largestDataFrame).toBe(SIDE_BAND_64K_MAX_DATA);
    expect(demuxed.dataFrames).toBe(Math.ceil(pack.length / SIDE_BAND_64K_MAX_DATA));
    expect(demuxed.progress).toBe("sending\n");
    expect(demuxed.flushes).toBe(1);
  });

  it("joins several packs under one header and a recomputed trailer, as concatenatedPacks does", async () => {
    const rows = [
      await stored("first", (await smallBlobPack(300)).pack),
      await stored("second", (await smallBlobPack(5000)).pack),
    ];
    const expected = await readAllBytes(concatenatedPacks(env.BLOBS, repositoryId, rows));
    for (const mode of ["side-band-64k", "side-band"] as const) {
      const demuxed = demuxSideBand(
        decodePkts(await readAllBytes(sideBandStoredPacks(env.BLOBS, repositoryId, rows, mode))),
      );
      expect(demuxed.data).toEqual(expected);
      expect(demuxed.largestDataFrame).toBe(mode === "side-band" ? SIDE_BAND_MAX_DATA : SIDE_BAND_64K_MAX_DATA);
      expect(demuxed.flushes).toBe(0);
    }
    // The joined pack is a valid pack: its trailer verifies and it holds every object of both.
    const indexed = await indexPack(expected);
    expect(indexed.entries.length).toBe(rows.reduce((n, row) => n + row.objectCount, 0));
  });

  it("fails the stream when a stored pack is missing", async () => {
    const row: PackRow = { id: "gone", objectCount: 1, packBytes: 100, indexBytes: 0, duplicateObjects: 0 };
    await expect(readAllBytes(sideBandStoredPacks(env.BLOBS, repositoryId, [row], "side-band-64k"))).rejects.toThrow(
      "pack gone is missing from storage",
    );
  });
});
