import { describe, expect, it } from "vitest";
import { formatShallowUpdate, negotiate } from "./negotiation";
import { decodePkts } from "./pkt-line";
import { oidA, oidB, oidC, oidD, text } from "./test-support";

const detailed = new Set(["multi_ack_detailed", "side-band-64k"]);
const detailedNoDone = new Set(["multi_ack_detailed", "no-done", "side-band-64k"]);
const known = new Set([oidA, oidB]);
const isCommon = async (oid: string) => known.has(oid);

describe("multi_ack_detailed, stateless", () => {
  it("a clone (no haves, done) is NAK then the pack", async () => {
    const r = await negotiate({ haves: [], done: true, capabilities: detailed, isCommon });
    expect(r.lines).toEqual(["NAK"]);
    expect(r.sendPack).toBe(true);
    expect(text(r.bytes)).toBe("0008NAK\n");
  });

  it("a round without done ACKs the commons, ends with NAK and sends no pack", async () => {
    const r = await negotiate({ haves: [oidC, oidA, oidD, oidB], done: false, capabilities: detailed, isCommon });
    expect(r.lines).toEqual([`ACK ${oidA} common`, `ACK ${oidB} common`, "NAK"]);
    expect(r.sendPack).toBe(false);
    expect(r.commons).toEqual([oidA, oidB]);
    expect(decodePkts(r.bytes)).toHaveLength(3);
  });

  it("a round with nothing in common is a bare NAK and no pack", async () => {
    const r = await negotiate({ haves: [oidC, oidD], done: false, capabilities: detailed, isCommon });
    expect(r.lines).toEqual(["NAK"]);
    expect(r.sendPack).toBe(false);
  });

  it("done after haves ends with the final ACK of the last common and the pack", async () => {
    const r = await negotiate({ haves: [oidA, oidB, oidC], done: true, capabilities: detailed, isCommon });
    expect(r.lines).toEqual([`ACK ${oidA} common`, `ACK ${oidB} common`, `ACK ${oidB}`]);
    expect(r.sendPack).toBe(true);
  });

  it("done with no common base is NAK and the full pack", async () => {
    const r = await negotiate({ haves: [oidC], done: true, capabilities: detailed, isCommon });
    expect(r.lines).toEqual(["NAK"]);
    expect(r.sendPack).toBe(true);
    expect(r.commons).toEqual([]);
  });

  it("signals ready when the commons close the pack, but still waits for done without no-done", async () => {
    const isReady = async (commons: readonly string[]) => commons.includes(oidB);
    const r = await negotiate({ haves: [oidA, oidB], done: false, capabilities: detailed, isCommon, isReady });
    expect(r.lines).toEqual([`ACK ${oidA} common`, `ACK ${oidB} common`, `ACK ${oidB} ready`, "NAK"]);
    expect(r.sendPack).toBe(false);
  });

  it("with no-done, ready sends the final ACK and the pack without waiting for done", async () => {
    const isReady = async (commons: readonly string[]) => commons.includes(oidA);
    const r = await negotiate({ haves: [oidA], done: false, capabilities: detailedNoDone, isCommon, isReady });
    expect(r.lines).toEqual([`ACK ${oidA} common`, `ACK ${oidA} ready`, "NAK", `ACK ${oidA}`]);
    expect(r.sendPack).toBe(true);
  });

  it("once ready, an unknown have is answered 'ready' on its own id", async () => {
    let calls = 0;
    const isReady = async () => {
      calls++;
      return true;
    };
    const r = await negotiate({
      haves: [oidA, oidC, oidD],
      done: false,
      capabilities: detailedNoDone,
      isCommon,
      isReady,
    });
    expect(r.lines).toEqual([`ACK ${oidA} common`, `ACK ${oidC} ready`, `ACK ${oidD} ready`, "NAK", `ACK ${oidA}`]);
    expect(r.sendPack).toBe(true);
    expect(calls).toBe(1); // readiness is asked once per set of commons
  });

  it("never calls the readiness policy without a common", async () => {
    const isReady = async () => {
      throw new Error("must not be called");
    };
    const r = await negotiate({ haves: [oidC], done: false, capabilities: detailedNoDone, isCommon, isReady });
    expect(r.lines).toEqual(["NAK"]);
  });

  it("ACKs a repeated have each time but counts it once", async () => {
    const r = await negotiate({ haves: [oidA, oidA], done: true, capabilities: detailed, isCommon });
    expect(r.lines).toEqual([`ACK ${oidA} common`, `ACK ${oidA} common`, `ACK ${oidA}`]);
    expect(r.commons).toEqual([oidA]);
  });
});

describe("batch existence check", () => {
  it("gives the same answer as isCommon with one call for all distinct haves", async () => {
    const calls: (readonly string[])[] = [];
    const whichExist = async (oids: readonly string[]) => {
      calls.push(oids);
      return new Set(oids.filter((o) => known.has(o)));
    };
    const haves = [oidC, oidA, oidD, oidB, oidA];
    const batched = await negotiate({ haves, done: false, capabilities: detailed, whichExist });
    const single = await negotiate({ haves, done: false, capabilities: detailed, isCommon });
    expect(batched).toEqual(single);
    expect(calls).toEqual([[oidC, oidA, oidD, oidB]]);
  });
});

describe("a request that ends after the want list", () => {
  it("gets no ACK or NAK, as git answers a shallow fetch's first request with the shallow section only", async () => {
    const r = await negotiate({ haves: [], done: false, haveListClosed: false, capabilities: detailed, isCommon });
    expect(r.lines).toEqual([]);
    expect(r.bytes.length).toBe(0);
    expect(r.sendPack).toBe(false);
  });
});

describe("other ack modes", () => {
  it("multi_ack answers continue", async () => {
    const caps = new Set(["multi_ack"]);
    const round = await negotiate({ haves: [oidA, oidC], done: false, capabilities: caps, isCommon });
    expect(round.lines).toEqual([`ACK ${oidA} continue`, "NAK"]);
    const last = await negotiate({ haves: [oidA], done: true, capabilities: caps, isCommon });
    expect(last.lines).toEqual([`ACK ${oidA} continue`, `ACK ${oidA}`]);
  });

  it("without multi_ack, ACKs the first common only and is silent on flush after it", async () => {
    const caps = new Set<string>();
    const round = await negotiate({ haves: [oidC, oidA, oidB], done: false, capabilities: caps, isCommon });
    expect(round.lines).toEqual([`ACK ${oidA}`]);
    expect(round.sendPack).toBe(false);
    const last = await negotiate({ haves: [oidA, oidB], done: true, capabilities: caps, isCommon });
    expect(last.lines).toEqual([`ACK ${oidA}`]);
    expect(last.sendPack).toBe(true);
    const none = await negotiate({ haves: [oidC], done: false, capabilities: caps, isCommon });
    expect(none.lines).toEqual(["NAK"]);
  });

  it("ignores no-done unless multi_ack_detailed is in effect", async () => {
    const r = await negotiate({
      haves: [oidA],
      done: false,
      capabilities: new Set(["no-done", "multi_ack"]),
      isCommon,
      isReady: async () => true,
    });
    expect(r.sendPack).toBe(false);
  });
});

describe("shallow section", () => {
  it("lists shallow then unshallow commits and ends with a flush, even when empty", () => {
    expect(text(formatShallowUpdate({ shallow: [oidA], unshallow: [oidB] }))).toBe(
      `0035shallow ${oidA}\n0037unshallow ${oidB}\n0000`,
    );
    expect(text(formatShallowUpdate({ shallow: [], unshallow: [] }))).toBe("0000");
  });
});
