import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors";
import {
  concatBytes,
  DELIM_PKT,
  decodePkts,
  encodeErr,
  encodeLine,
  encodePkt,
  FLUSH_PKT,
  MAX_PKT_PAYLOAD,
  type Packet,
  PktLineReader,
  payloadText,
  RESPONSE_END_PKT,
  readAllBytes,
} from "./pkt-line";
import { byteStream, bytes, chunkedStream, fuzzParams, text } from "./test-support";

async function readAll(reader: PktLineReader): Promise<Packet[]> {
  const out: Packet[] = [];
  for (;;) {
    const p = await reader.read();
    if (p === null) return out;
    out.push(p);
  }
}

function describePackets(packets: Packet[]): string[] {
  return packets.map((p) => (p.type === "data" ? `data:${text(p.payload)}` : p.type));
}

const mixed = concatBytes([
  encodeLine("# service=git-upload-pack"),
  FLUSH_PKT,
  encodePkt(""),
  encodePkt(new Uint8Array([0, 1, 2, 255])),
  DELIM_PKT,
  RESPONSE_END_PKT,
  encodeLine("done"),
]);
const mixedExpected = [
  "data:# service=git-upload-pack\n",
  "flush",
  "data:",
  `data:${text(new Uint8Array([0, 1, 2, 255]))}`,
  "delim",
  "response-end",
  "data:done\n",
];

async function expectProtocolError(promise: Promise<unknown>, message: string): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).message).toBe(message);
}

describe("encoding", () => {
  it("prefixes the payload with its total length in 4 lowercase hex digits", () => {
    expect(text(encodePkt("hello\n"))).toBe("000ahello\n");
    expect(text(encodeLine("want x"))).toBe("000bwant x\n");
    expect(text(encodePkt(new Uint8Array(0xfa)))).toMatch(/^00fe/);
    expect(text(FLUSH_PKT)).toBe("0000");
    expect(text(DELIM_PKT)).toBe("0001");
    expect(text(RESPONSE_END_PKT)).toBe("0002");
  });

  it("writes ERR lines as git clients expect them", () => {
    expect(text(encodeErr("forbidden ref"))).toBe("0016ERR forbidden ref\n");
  });

  it("accepts exactly the maximum payload with header fff0 and rejects one byte more", () => {
    const max = encodePkt(new Uint8Array(MAX_PKT_PAYLOAD));
    expect(text(max.subarray(0, 4))).toBe("fff0");
    expect(max.length).toBe(65520);
    expect(() => encodePkt(new Uint8Array(MAX_PKT_PAYLOAD + 1))).toThrow(ProtocolError);
    expect(() => encodePkt(new Uint8Array(MAX_PKT_PAYLOAD + 1))).toThrow("oversize pkt-line payload");
  });
});

describe("decoding a whole buffer", () => {
  it("round-trips data, flush, delim, response-end and the empty line 0004", () => {
    expect(describePackets(decodePkts(mixed))).toEqual(mixedExpected);
    expect(decodePkts(bytes("0004"))).toEqual([{ type: "data", payload: new Uint8Array(0) }]);
  });

  it("reads hex lengths in either case", () => {
    const upper = bytes(`000A${"x".repeat(6)}`);
    expect(describePackets(decodePkts(upper))).toEqual(["data:xxxxxx"]);
  });

  it.each([
    ["zzzz", "malformed pkt-line length"],
    ["00g5x", "malformed pkt-line length"],
    ["-001", "malformed pkt-line length"],
    ["0003", "reserved pkt-line length"],
    ["fff1", "oversize pkt-line"],
    ["ffff", "oversize pkt-line"],
    ["000", "truncated pkt-line"],
    ["0009don", "truncated pkt-line"],
    ["00", "truncated pkt-line"],
  ])("rejects %j with %j", (input, message) => {
    expect(() => decodePkts(bytes(input))).toThrow(ProtocolError);
    expect(() => decodePkts(bytes(input))).toThrow(message);
  });

  it("returns nothing for an empty buffer", () => {
    expect(decodePkts(new Uint8Array(0))).toEqual([]);
  });
});

describe("streaming reader", () => {
  it("parses frames split anywhere: headers, bodies, one byte at a time", async () => {
    expect(describePackets(await readAll(new PktLineReader(byteStream(mixed))))).toEqual(mixedExpected);
    expect(describePackets(await readAll(new PktLineReader(chunkedStream(mixed, [2, 3, 1, 7, 5]))))).toEqual(
      mixedExpected,
    );
    expect(describePackets(await readAll(new PktLineReader(mixed)))).toEqual(mixedExpected);
  });

  it("reads a maximum-size frame delivered in small odd chunks", async () => {
    const big = encodePkt(new Uint8Array(MAX_PKT_PAYLOAD).fill(7));
    const packets = await readAll(
      new PktLineReader(
        chunkedStream(
          big,
          Array.from({ length: 6000 }, () => 13),
        ),
      ),
    );
    expect(packets).toHaveLength(1);
    const p = packets[0] as Packet & { type: "data" };
    expect(p.payload.length).toBe(MAX_PKT_PAYLOAD);
    expect(p.payload.every((b) => b === 7)).toBe(true);
  });

  it("returns null at end of stream on a frame boundary", async () => {
    const reader = new PktLineReader(FLUSH_PKT);
    expect(await reader.read()).toEqual({ type: "flush" });
    expect(await reader.read()).toBeNull();
    expect(await reader.read()).toBeNull();
  });

  it("reports a truncated header or body", async () => {
    await expectProtocolError(new PktLineReader(byteStream(bytes("00"))).read(), "truncated pkt-line");
    await expectProtocolError(new PktLineReader(byteStream(bytes("000ahel"))).read(), "truncated pkt-line");
  });

  it("reports a malformed, reserved or oversize length", async () => {
    await expectProtocolError(new PktLineReader(bytes("xx00")).read(), "malformed pkt-line length");
    await expectProtocolError(new PktLineReader(bytes("0003")).read(), "reserved pkt-line length");
    await expectProtocolError(new PktLineReader(bytes("fff1")).read(), "oversize pkt-line");
  });

  it("hands back the raw bytes after a flush, including bytes already buffered", async () => {
    const pack = new Uint8Array(100_000).map((_, i) => (i * 31) & 255);
    const body = concatBytes([encodeLine("command"), FLUSH_PKT, pack]);
    for (const source of [body, chunkedStream(body, [3, 20, 9, 1000]), chunkedStream(body, [14])]) {
      const reader = new PktLineReader(source);
      expect(describePackets([(await reader.read()) as Packet])).toEqual(["data:command\n"]);
      expect(await reader.read()).toEqual({ type: "flush" });
      const rest = await readAllBytes(reader.remainder());
      expect(rest).toEqual(pack);
    }
  });

  it("gives an empty remainder when nothing follows", async () => {
    const reader = new PktLineReader(chunkedStream(concatBytes([encodeLine("x"), FLUSH_PKT]), [1]));
    await reader.read();
    await reader.read();
    expect((await readAllBytes(reader.remainder())).length).toBe(0);
  });
});

describe("payload text", () => {
  it("drops one trailing LF and rejects invalid UTF-8", () => {
    expect(payloadText(bytes("have x\n"))).toBe("have x");
    expect(payloadText(bytes("have x"))).toBe("have x");
    expect(payloadText(bytes("a\n\n"))).toBe("a\n");
    expect(() => payloadText(new Uint8Array([0xff, 0xfe]))).toThrow(ProtocolError);
  });
});

describe("fuzz", () => {
  const onlyProtocolErrors = (e: unknown) => {
    if (!(e instanceof ProtocolError)) throw e;
  };

  it("round-trips any sequence of packets through any chunking", async () => {
    const packetArb = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((payload): Packet => ({ type: "data", payload })),
      fc.constant<Packet>({ type: "flush" }),
      fc.constant<Packet>({ type: "delim" }),
      fc.constant<Packet>({ type: "response-end" }),
    );
    const encode = (p: Packet) =>
      p.type === "data"
        ? encodePkt(p.payload)
        : p.type === "flush"
          ? FLUSH_PKT
          : p.type === "delim"
            ? DELIM_PKT
            : RESPONSE_END_PKT;
    await fc.assert(
      fc.asyncProperty(
        fc.array(packetArb, { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 200 }),
        async (packets, sizes) => {
          const wire = concatBytes(packets.map(encode));
          expect(decodePkts(wire)).toEqual(packets);
          expect(await readAll(new PktLineReader(chunkedStream(wire, sizes)))).toEqual(packets);
        },
      ),
      fuzzParams("pkt-line round-trip", 2000),
    );
  });

  it("random and truncated bytes only ever yield packets or a ProtocolError, whole or streamed", async () => {
    const nearValid = fc
      .tuple(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), fc.nat())
      .map(([payloads, cut]) => {
        const wire = concatBytes(payloads.map((p) => encodePkt(p)));
        return wire.subarray(0, wire.length === 0 ? 0 : cut % (wire.length + 1));
      });
    const hexy = fc
      .array(fc.constantFrom(..."0123456789abcdefABCDEFxyz\n\0 "), { maxLength: 80 })
      .map((chars) => bytes(chars.join("")));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 200 }), nearValid, hexy),
        fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 50 }),
        async (input, sizes) => {
          let whole: Packet[] | ProtocolError;
          try {
            whole = decodePkts(input);
          } catch (e) {
            onlyProtocolErrors(e);
            whole = e as ProtocolError;
          }
          let streamed: Packet[] | ProtocolError;
          try {
            streamed = await readAll(new PktLineReader(chunkedStream(input, sizes)));
          } catch (e) {
            onlyProtocolErrors(e);
            streamed = e as ProtocolError;
          }
          // Both decoders agree: the same packets, or the same error.
          if (whole instanceof ProtocolError) expect((streamed as ProtocolError).message).toBe(whole.message);
          else expect(streamed).toEqual(whole);
        },
      ),
      fuzzParams("pkt-line random bytes", 3000),
    );
  });
});
