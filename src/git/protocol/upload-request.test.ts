import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UPLOAD_PACK_CAPABILITIES } from "./advertisement";
import { negotiatedCapabilities } from "./capabilities";
import { ProtocolError } from "./errors";
import {
  byteStream,
  bytes,
  chunkedStream,
  fuzzParams,
  type Mutation,
  mutate,
  mutationArbitrary,
  oidA,
  oidB,
  oidC,
  pkt,
} from "./test-support";
import { parseUploadRequest, wantsShallowUpdate } from "./upload-request";

const body = (...parts: string[]) => bytes(parts.join(""));
const clone = body(
  pkt(`want ${oidA} multi_ack_detailed no-done side-band-64k thin-pack ofs-delta agent=git/2.43.0\n`),
  pkt(`want ${oidB}\n`),
  "0000",
  pkt("done\n"),
);

async function rejects(input: Uint8Array, message: string | RegExp, options = {}): Promise<ProtocolError> {
  const err = await parseUploadRequest(input, options).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).message).toMatch(message);
  return err as ProtocolError;
}

describe("upload-pack request", () => {
  it("parses a clone: wants with capabilities on the first, flush, done", async () => {
    const req = await parseUploadRequest(clone);
    expect(req).toEqual({
      wants: [oidA, oidB],
      capabilities: ["multi_ack_detailed", "no-done", "side-band-64k", "thin-pack", "ofs-delta", "agent=git/2.43.0"],
      shallows: [],
      depth: null,
      deepenRelative: false,
      deepenSince: null,
      deepenNot: [],
      filter: null,
      haves: [],
      done: true,
      haveListClosed: true,
    });
    expect([...negotiatedCapabilities(req.capabilities, UPLOAD_PACK_CAPABILITIES)]).toEqual([
      "multi_ack_detailed",
      "no-done",
      "side-band-64k",
      "thin-pack",
      "ofs-delta",
    ]);
    expect(wantsShallowUpdate(req)).toBe(false);
  });

  it("parses the same body from a stream split one byte at a time", async () => {
    expect(await parseUploadRequest(byteStream(clone))).toEqual(await parseUploadRequest(clone));
  });

  it("parses a fetch round: haves ending with a flush and no done", async () => {
    const req = await parseUploadRequest(
      body(pkt(`want ${oidA} multi_ack_detailed\n`), "0000", pkt(`have ${oidB}\n`), pkt(`have ${oidC}`), "0000"),
    );
    expect(req.haves).toEqual([oidB, oidC]);
    expect(req.done).toBe(false);
    expect(req.haveListClosed).toBe(true);
  });

  it("parses haves then done (the last stateless round)", async () => {
    const req = await parseUploadRequest(body(pkt(`want ${oidA}\n`), "0000", pkt(`have ${oidB}\n`), pkt("done\n")));
    expect(req).toMatchObject({ haves: [oidB], done: true });
  });

  it("parses a shallow clone's depth request, which ends at the first flush", async () => {
    const req = await parseUploadRequest(
      body(pkt(`want ${oidA} shallow deepen-relative\n`), pkt(`shallow ${oidB}\n`), pkt("deepen 1\n"), "0000"),
    );
    expect(req).toMatchObject({
      shallows: [oidB],
      depth: 1,
      deepenRelative: true,
      haves: [],
      done: false,
      haveListClosed: false,
    });
    expect(wantsShallowUpdate(req)).toBe(true);
  });

  it("parses deepen-since and deepen-not", async () => {
    const req = await parseUploadRequest(
      body(
        pkt(`want ${oidA}\n`),
        pkt("deepen-since 1700000000\n"),
        pkt("deepen-not refs/tags/v1\n"),
        "0000",
        pkt("done"),
      ),
    );
    expect(req).toMatchObject({ deepenSince: 1700000000, deepenNot: ["refs/tags/v1"], depth: null });
    expect(wantsShallowUpdate(req)).toBe(true);
  });

  it("returns an empty want list for an empty body or a bare flush (the route answers ERR)", async () => {
    expect((await parseUploadRequest(new Uint8Array(0))).wants).toEqual([]);
    expect((await parseUploadRequest(bytes("0000"))).wants).toEqual([]);
  });

  it("accepts a filter only when advertised and requested", async () => {
    const withFilter = body(pkt(`want ${oidA} filter\n`), pkt("filter blob:none\n"), "0000", pkt("done\n"));
    expect((await parseUploadRequest(withFilter)).filter).toBe("blob:none");
    const advertised = UPLOAD_PACK_CAPABILITIES.filter((c) => c !== "filter");
    const err = await rejects(withFilter, "filter is not supported by this server", { advertised });
    expect(err.code).toBe("unsupported");
    await rejects(
      body(pkt(`want ${oidA}\n`), pkt("filter blob:none\n"), "0000", pkt("done\n")),
      "filtering capability not negotiated",
    );
  });

  it("refuses depth features the server did not advertise", async () => {
    const advertised = ["multi_ack_detailed", "side-band-64k"];
    await rejects(body(pkt(`want ${oidA}\n`), pkt("deepen 3\n"), "0000"), "deepen is not supported", { advertised });
    await rejects(body(pkt(`want ${oidA}\n`), pkt(`shallow ${oidB}\n`), "0000"), "shallow is not supported", {
      advertised,
    });
    await rejects(body(pkt(`want ${oidA}\n`), pkt("deepen-since 5\n"), "0000"), "deepen-since is not supported", {
      advertised,
    });
  });

  it.each([
    [`want ${oidA.toUpperCase()}\n`, "want: expected a 40-hex object id"],
    [`want ${oidA.slice(1)}\n`, "want: expected a 40-hex object id"],
    ["want\n", "want: expected a 40-hex object id"],
    [`shallow ${oidA}x\n`, "shallow: expected a 40-hex object id"],
    ["deepen 0\n", "invalid deepen"],
    ["deepen -1\n", "invalid deepen"],
    ["deepen 1x\n", "invalid deepen"],
    ["deepen-since 0\n", "invalid deepen-since"],
    ["deepen-not \n", "invalid deepen-not"],
    [`have ${oidA}\n`, "unexpected line in the want list: 'have'"],
    ["done\n", "unexpected line in the want list: 'done'"],
    ["command=fetch\n", "unexpected line in the want list"],
  ])("rejects %j in the want list", async (line, message) => {
    await rejects(body(pkt(`want ${oidB}\n`), pkt(line), "0000", pkt("done\n")), message);
  });

  it("rejects bad have lines, stray packets and data after the end", async () => {
    const head = `${pkt(`want ${oidA}\n`)}0000`;
    await rejects(body(head, pkt(`have ${oidB.slice(2)}\n`), pkt("done\n")), "have: expected a 40-hex object id");
    await rejects(body(head, pkt(`want ${oidB}\n`), pkt("done\n")), "expected have or done, got 'want'");
    await rejects(body(pkt(`want ${oidA}\n`), "0001", "0000"), "unexpected delim packet in the want list");
    await rejects(body(head, "0002"), "unexpected response-end packet in the have list");
    await rejects(body(head, pkt("done\n"), pkt(`have ${oidB}\n`)), "unexpected data after the end of the request");
    await rejects(body(pkt(`want ${oidA}\n`)), "request ends before the flush after the want list");
    await rejects(body(head, "00"), "truncated pkt-line");
  });

  it("rejects deepen together with deepen-since", async () => {
    await rejects(
      body(pkt(`want ${oidA}\n`), pkt("deepen 2\n"), pkt("deepen-since 10\n"), "0000"),
      "deepen and deepen-since (or deepen-not) cannot be used together",
    );
  });

  it("fuzz: valid bodies parse; random, mutated and truncated ones yield a ProtocolError, never hang", async () => {
    const oid = fc.stringMatching(/^[0-9a-f]{40}$/);
    const valid = fc
      .record({
        wants: fc.array(oid, { minLength: 1, maxLength: 4 }),
        caps: fc.subarray([
          "multi_ack_detailed",
          "no-done",
          "side-band-64k",
          "ofs-delta",
          "deepen-relative",
          "agent=git/2.43",
        ]),
        shallows: fc.array(oid, { maxLength: 2 }),
        deepen: fc.option(
          fc.oneof(
            fc.integer({ min: 1, max: 2147483647 }).map((n) => `deepen ${n}`),
            fc.integer({ min: 1, max: 2e9 }).map((n) => `deepen-since ${n}`),
            fc.constantFrom("deepen-not refs/heads/main", "deepen-not v1.0"),
          ),
          { nil: undefined },
        ),
        haves: fc.array(oid, { maxLength: 6 }),
        end: fc.constantFrom("done\n", "done", "0000", ""),
      })
      .map((r) => ({
        ...r,
        wire: bytes(
          [
            pkt(`want ${r.wants[0]}${r.caps.map((c) => ` ${c}`).join("")}\n`),
            ...r.wants.slice(1).map((w) => pkt(`want ${w}\n`)),
            ...r.shallows.map((o) => pkt(`shallow ${o}\n`)),
            ...(r.deepen ? [pkt(`${r.deepen}\n`)] : []),
            "0000",
            ...r.haves.map((h) => pkt(`have ${h}\n`)),
            r.end === "0000" || r.end === "" ? r.end : pkt(r.end),
          ].join(""),
        ),
      }));
    const mutation = mutationArbitrary(30);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 4, arbitrary: fc.tuple(valid, mutation) },
          fc.tuple(fc.constant(null), fc.constant<Mutation>({ kind: "none" })),
        ),
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 40 }),
        async ([model, m], random, sizes) => {
          const wire = model ? mutate(model.wire, m) : random;
          try {
            const req = await parseUploadRequest(chunkedStream(wire, sizes));
            for (const o of [...req.wants, ...req.haves, ...req.shallows]) expect(o).toMatch(/^[0-9a-f]{40}$/);
            if (model && m.kind === "none") {
              expect(req.wants).toEqual(model.wants);
              expect(req.haves).toEqual(model.haves);
              expect(req.shallows).toEqual(model.shallows);
              expect(req.done).toBe(model.end.startsWith("done"));
              expect(req.haveListClosed).toBe(model.end !== "");
            }
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            // An untouched valid body must parse.
            if (model && m.kind === "none") throw e;
          }
        },
      ),
      fuzzParams("upload-request", 3000),
    );
  });
});
