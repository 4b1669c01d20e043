import { describe, expect, it } from "vitest";
import { concatBytes, decodePkts, readAllBytes } from "./pkt-line";
import { buildReportStatus } from "./report-status";
import {
  demuxSideBand,
  fatalPackets,
  negotiatedSideBand,
  progressPackets,
  SIDE_BAND_64K_MAX_DATA,
  SIDE_BAND_MAX_DATA,
  sideBandPackets,
  sideBandStream,
} from "./side-band";
import { chunkedStream, text } from "./test-support";

function patterned(n: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 7 + (i >> 8)) & 255);
}

async function mux(data: Uint8Array, sizes: number[], ...args: Parameters<typeof sideBandStream>) {
  const out = await readAllBytes(chunkedStream(data, sizes).pipeThrough(sideBandStream(...args)));
  return { wire: out, demuxed: demuxSideBand(decodePkts(out)) };
}

describe("side-band-64k", () => {
  it("sends a small pack as a single band-1 frame", async () => {
    const pack = patterned(100);
    const { wire, demuxed } = await mux(pack, [], "side-band-64k");
    expect(text(wire.subarray(0, 5))).toBe("0069\u0001");
    expect(demuxed.dataFrames).toBe(1);
    expect(demuxed.data).toEqual(pack);
  });

  it("never puts more than 65515 bytes in a frame and reassembles byte-exactly", async () => {
    const pack = patterned(3 * SIDE_BAND_64K_MAX_DATA + 1234);
    // Small and odd chunks: the muxer coalesces them into full frames.
    const { demuxed } = await mux(
      pack,
      Array.from({ length: 5000 }, (_, i) => 1 + (i % 97)),
      "side-band-64k",
    );
    expect(demuxed.largestDataFrame).toBe(SIDE_BAND_64K_MAX_DATA);
    expect(demuxed.dataFrames).toBe(4);
    expect(demuxed.data).toEqual(pack);
    const direct = sideBandPackets(1, pack, "side-band-64k");
    expect(direct).toHaveLength(4);
    expect(direct.every((f) => f.length <= 65520)).toBe(true);
    expect(demuxSideBand(decodePkts(concatBytes(direct))).data).toEqual(pack);
  });

  it("limits plain side-band frames to 995 data bytes (1000-byte packets)", async () => {
    const pack = patterned(5000);
    const { wire, demuxed } = await mux(pack, [4096], "side-band");
    expect(SIDE_BAND_MAX_DATA).toBe(995);
    expect(demuxed.largestDataFrame).toBe(995);
    expect(demuxed.data).toEqual(pack);
    expect(decodePkts(wire).every((p) => p.type === "data" && p.payload.length <= 996)).toBe(true);
  });

  it("sends progress on band 2 before the data, and no band 2 unless asked", async () => {
    const pack = patterned(10);
    const withProgress = await mux(pack, [], "side-band-64k", { progress: ["Counting objects: 3, done."] });
    const first = decodePkts(withProgress.wire)[0];
    expect(first?.type === "data" && first.payload[0]).toBe(2);
    expect(withProgress.demuxed.progress).toBe("Counting objects: 3, done.\n");
    const without = await mux(pack, [], "side-band-64k");
    expect(without.demuxed.progress).toBe("");
  });

  it("ends with a flush when asked, and sends nothing for an empty pack", async () => {
    const { wire } = await mux(new Uint8Array(0), [], "side-band-64k", { endWithFlush: true });
    expect(text(wire)).toBe("0000");
  });

  it("a fatal message is one band-3 frame", () => {
    const packets = decodePkts(fatalPackets("pack build failed", "side-band-64k"));
    expect(packets).toHaveLength(1);
    const d = demuxSideBand(packets);
    expect(d.errors).toEqual(["pack build failed\n"]);
    expect(d.data.length).toBe(0);
    expect(demuxSideBand(decodePkts(progressPackets("50%\r", "side-band"))).progress).toBe("50%\r");
  });

  it("prefers 64k when the client asked for both", () => {
    expect(negotiatedSideBand(["side-band", "side-band-64k"])).toBe("side-band-64k");
    expect(negotiatedSideBand(["side-band"])).toBe("side-band");
    expect(negotiatedSideBand(["ofs-delta"])).toBeNull();
  });
});

describe("report-status", () => {
  it("is byte-exact for a single ref", () => {
    const out = buildReportStatus({ unpackError: null, refs: [{ ref: "refs/heads/main", ok: true }] });
    expect(text(out)).toBe("000eunpack ok\n0017ok refs/heads/main\n0000");
  });

  it("keeps request order and mixes ok and ng lines", () => {
    const out = buildReportStatus({
      unpackError: null,
      refs: [
        { ref: "refs/heads/a", ok: true },
        { ref: "refs/heads/b", ok: false, reason: "non-fast-forward" },
        { ref: "refs/heads/c", ok: false, reason: "path-violation: secrets/x" },
        { ref: "refs/heads/d", ok: false, reason: "forbidden" },
      ],
    });
    expect(decodePkts(out).map((p) => (p.type === "data" ? text(p.payload) : p.type))).toEqual([
      "unpack ok\n",
      "ok refs/heads/a\n",
      "ng refs/heads/b non-fast-forward\n",
      "ng refs/heads/c path-violation: secrets/x\n",
      "ng refs/heads/d forbidden\n",
      "flush",
    ]);
  });

  it("reports an unpack error and keeps every reason on one line", () => {
    const out = buildReportStatus({
      unpackError: "index-pack abnormal exit",
      refs: [{ ref: "refs/heads/main", ok: false, reason: "unpacker error\nsecond line" }],
    });
    expect(text(out)).toBe(
      "0024unpack index-pack abnormal exit\n0032ng refs/heads/main unpacker error second line\n0000",
    );
  });

  it("travels on band 1 with its own flush inside, then a final flush, when side-band is negotiated", () => {
    const report = { unpackError: null, refs: [{ ref: "refs/heads/main", ok: true as const }] };
    const out = buildReportStatus(report, "side-band-64k");
    const packets = decodePkts(out);
    expect(packets.at(-1)).toEqual({ type: "flush" });
    const d = demuxSideBand(packets);
    expect(d.flushes).toBe(1);
    expect(text(d.data)).toBe(text(buildReportStatus(report)));
  });
});
