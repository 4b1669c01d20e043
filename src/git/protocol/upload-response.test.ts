import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors";
import { formatShallowUpdate, negotiate } from "./negotiation";
import { decodePkts, readAllBytes } from "./pkt-line";
import { demuxSideBand } from "./side-band";
import { bytes, chunkedStream, oidA, text } from "./test-support";
import { uploadPackResponse } from "./upload-response";

const caps = new Set(["multi_ack_detailed", "side-band-64k"]);
const isCommon = async (oid: string) => oid === oidA;
const pack = bytes("PACK\0\0\0\u0002\0\0\0\0fake-pack-body");

describe("upload-pack response", () => {
  it("is NAK, the side-banded pack, a flush — for a clone", async () => {
    const negotiation = await negotiate({ haves: [], done: true, capabilities: caps, isCommon });
    const out = await readAllBytes(
      uploadPackResponse({ negotiation, pack: chunkedStream(pack, [3]), sideBand: "side-band-64k" }),
    );
    const packets = decodePkts(out);
    expect(packets[0]).toEqual({ type: "data", payload: bytes("NAK\n") });
    expect(packets.at(-1)).toEqual({ type: "flush" });
    const d = demuxSideBand(packets.slice(1));
    expect(d.data).toEqual(pack);
    expect(d.progress).toBe("");
  });

  it("puts the shallow section first and sends no pack when the round does not end in one", async () => {
    const negotiation = await negotiate({ haves: [oidA], done: false, capabilities: caps, isCommon });
    const unused = chunkedStream(pack);
    const out = await readAllBytes(
      uploadPackResponse({
        shallowUpdate: formatShallowUpdate({ shallow: [oidA], unshallow: [] }),
        negotiation,
        pack: unused,
        sideBand: "side-band-64k",
      }),
    );
    expect(text(out)).toBe(`0035shallow ${oidA}\n00000038ACK ${oidA} common\n0008NAK\n`);
  });

  it("sends the pack raw without side-band", async () => {
    const negotiation = await negotiate({ haves: [], done: true, capabilities: new Set(), isCommon });
    const out = await readAllBytes(uploadPackResponse({ negotiation, pack: chunkedStream(pack), sideBand: null }));
    expect(text(out)).toBe(`0008NAK\n${text(pack)}`);
  });

  it("ends with a band-3 message when the pack fails midway", async () => {
    const negotiation = await negotiate({ haves: [], done: true, capabilities: caps, isCommon });
    let sent = false;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(bytes("PACK"));
        } else controller.error(new ProtocolError("invalid_request", "object missing"));
      },
    });
    const out = await readAllBytes(uploadPackResponse({ negotiation, pack: failing, sideBand: "side-band-64k" }));
    const d = demuxSideBand(decodePkts(out).slice(1));
    expect(d.errors).toEqual(["upload-pack: object missing\n"]);
  });
});
