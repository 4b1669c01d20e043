import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors";
import { decodePkts } from "./pkt-line";
import {
  bytes,
  chunkedStream,
  fuzzParams,
  mutate,
  mutationArbitrary,
  oidA,
  oidB,
  oidC,
  pkt,
  text,
} from "./test-support";
import {
  buildV2Advertisement,
  formatAcknowledgments,
  formatLsRefs,
  formatShallowInfo,
  parseFetchArgs,
  parseLsRefsArgs,
  parseV2Request,
  wantsProtocolV2,
} from "./v2";

const body = (...parts: string[]) => bytes(parts.join(""));
const lsRefs = body(
  pkt("command=ls-refs\n"),
  pkt("agent=git/2.39.5\n"),
  pkt("object-format=sha1\n"),
  "0001",
  pkt("peel\n"),
  pkt("symrefs\n"),
  pkt("unborn\n"),
  pkt("ref-prefix HEAD\n"),
  pkt("ref-prefix refs/heads/\n"),
  "0000",
);

async function rejects(input: Uint8Array, message: RegExp): Promise<void> {
  const err = await parseV2Request(input).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).message).toMatch(message);
}

describe("protocol v2", () => {
  it("is asked for with Git-Protocol: version=2, among other keys", () => {
    expect(wantsProtocolV2("version=2")).toBe(true);
    expect(wantsProtocolV2("object-format=sha1:version=2")).toBe(true);
    expect(wantsProtocolV2("version=1")).toBe(false);
    expect(wantsProtocolV2("version=20")).toBe(false);
    expect(wantsProtocolV2(null)).toBe(false);
  });

  it("advertises version 2, the agent and the commands, ending with a flush", () => {
    expect(text(buildV2Advertisement("1.2.3"))).toBe(
      "000eversion 2\n" +
        "001aagent=agent-hub/1.2.3\n" +
        "0013ls-refs=unborn\n" +
        "0019fetch=shallow filter\n" +
        "0012server-option\n" +
        "0017object-format=sha1\n" +
        "0000",
    );
  });

  it("parses a command request: capabilities before the delim, arguments after", async () => {
    expect(await parseV2Request(lsRefs)).toEqual({
      command: "ls-refs",
      capabilities: ["agent=git/2.39.5", "object-format=sha1"],
      args: ["peel", "symrefs", "unborn", "ref-prefix HEAD", "ref-prefix refs/heads/"],
    });
    expect(await parseV2Request(chunkedStream(lsRefs, [1, 2, 3]))).toMatchObject({ command: "ls-refs" });
    // A lone flush (or nothing) is the empty request: no more commands.
    expect(await parseV2Request(bytes("0000"))).toEqual({ command: null });
    expect(await parseV2Request(bytes(""))).toEqual({ command: null });
  });

  it("refuses unknown commands and capabilities, other hashes, truncation and stray packets", async () => {
    await rejects(body(pkt("command=push\n"), "0000"), /unknown command 'push'/);
    await rejects(body(pkt("want x\n"), "0000"), /starts with command=/);
    await rejects(body(pkt("command=fetch\n"), pkt("bogus-cap\n"), "0001", "0000"), /unknown capability/);
    await rejects(body(pkt("command=fetch\n"), pkt("object-format=sha256\n"), "0000"), /sha1/);
    await rejects(body(pkt("command=fetch\n"), "0001", pkt("done\n")), /ends before its flush/);
    await rejects(body(pkt("command=fetch\n"), "0001", "0001", "0000"), /second delim/);
    await rejects(body(pkt("command=fetch\n"), "0002", "0000"), /unexpected response-end/);
    await rejects(body("0001", "0000"), /before the command/);
    await rejects(body(pkt("command=fetch\n"), "0000", pkt("more\n")), /after the end/);
  });

  it("ls-refs: HEAD with its target, refs by prefix, peeled tags; unborn HEAD on request", () => {
    const refs = [
      { name: "refs/heads/main", oid: oidA },
      { name: "refs/tags/v1", oid: oidB, peeled: oidC },
    ];
    const args = parseLsRefsArgs(["peel", "symrefs", "unborn", "ref-prefix HEAD", "ref-prefix refs/heads/"]);
    expect(text(formatLsRefs(refs, { target: "refs/heads/main", targetVisible: true }, args))).toBe(
      `${pkt(`${oidA} HEAD symref-target:refs/heads/main\n`)}${pkt(`${oidA} refs/heads/main\n`)}0000`,
    );
    const all = parseLsRefsArgs(["peel"]);
    expect(text(formatLsRefs(refs, { target: "refs/heads/main", targetVisible: true }, all))).toBe(
      `${pkt(`${oidA} HEAD\n`)}${pkt(`${oidA} refs/heads/main\n`)}${pkt(`${oidB} refs/tags/v1 peeled:${oidC}\n`)}0000`,
    );
    // An empty repository: HEAD points at a branch that does not exist yet.
    expect(text(formatLsRefs([], { target: "refs/heads/main", targetVisible: true }, args))).toBe(
      `${pkt("unborn HEAD symref-target:refs/heads/main\n")}0000`,
    );
    expect(text(formatLsRefs([], { target: "refs/heads/main", targetVisible: true }, all))).toBe("0000");
    // A token that may not see HEAD's branch does not learn where HEAD points.
    expect(text(formatLsRefs([], { target: "refs/heads/main", targetVisible: false }, args))).toBe("0000");
    expect(() => parseLsRefsArgs(["bogus"])).toThrow(ProtocolError);
  });

  it("fetch arguments become the upload-pack request; unsupported ones are refused", () => {
    const req = parseFetchArgs([
      "thin-pack",
      "no-progress",
      "ofs-delta",
      "include-tag",
      `want ${oidA}`,
      `have ${oidB}`,
      `shallow ${oidC}`,
      "deepen 3",
      "done",
    ]);
    expect(req).toMatchObject({
      wants: [oidA],
      haves: [oidB],
      shallows: [oidC],
      depth: 3,
      done: true,
      capabilities: ["thin-pack", "no-progress", "ofs-delta", "include-tag"],
    });
    expect(() => parseFetchArgs(["want nope"])).toThrow(/40-hex/);
    expect(() => parseFetchArgs(["deepen 0"])).toThrow(/invalid deepen/);
    expect(() => parseFetchArgs(["sideband-all"])).toThrow(/not supported/);
    expect(() => parseFetchArgs(["want-ref refs/heads/main"])).toThrow(/not supported/);
  });

  it("fetch arguments: filter, deepen-since, deepen-not and deepen-relative (all under fetch=shallow filter)", () => {
    const partial = parseFetchArgs([`want ${oidA}`, "filter blob:none", "done"]);
    expect(partial).toMatchObject({ wants: [oidA], filter: "blob:none", done: true });
    const since = parseFetchArgs([`want ${oidA}`, "deepen-since 1700000000", "deepen-not v1", "deepen-not main"]);
    expect(since).toMatchObject({ deepenSince: 1700000000, deepenNot: ["v1", "main"], depth: null });
    const relative = parseFetchArgs([`want ${oidA}`, `shallow ${oidB}`, "deepen 2", "deepen-relative"]);
    expect(relative).toMatchObject({ depth: 2, deepenRelative: true, shallows: [oidB] });
    expect(() => parseFetchArgs(["filter "])).toThrow(/invalid filter/);
    expect(() => parseFetchArgs(["deepen-not"])).toThrow(/invalid deepen-not/);
    expect(() => parseFetchArgs(["deepen-since soon"])).toThrow(/invalid deepen-since/);
    expect(() => parseFetchArgs(["deepen 2", "deepen-since 5"])).toThrow(/cannot be used together/);
  });

  it("acknowledgments: NAK when nothing is common, else an ACK per common have; shallow-info ends in a delim", () => {
    expect(text(formatAcknowledgments([]))).toBe(`${pkt("acknowledgments\n")}${pkt("NAK\n")}0000`);
    expect(text(formatAcknowledgments([oidA, oidB]))).toBe(
      `${pkt("acknowledgments\n")}${pkt(`ACK ${oidA}\n`)}${pkt(`ACK ${oidB}\n`)}0000`,
    );
    // Ready: the pack follows in the same response, so a delim (not a flush) ends the section.
    expect(text(formatAcknowledgments([oidA], true))).toBe(
      `${pkt("acknowledgments\n")}${pkt(`ACK ${oidA}\n`)}${pkt("ready\n")}0001`,
    );
    expect(text(formatShallowInfo({ shallow: [oidA], unshallow: [oidB] }))).toBe(
      `${pkt("shallow-info\n")}${pkt(`shallow ${oidA}\n`)}${pkt(`unshallow ${oidB}\n`)}0001`,
    );
  });

  it("never crashes on random or damaged requests: a ProtocolError or a request", async () => {
    const valid = fc.constantFrom(
      lsRefs,
      body(pkt("command=fetch\n"), pkt("agent=git/2.39.5\n"), "0001", pkt(`want ${oidA}\n`), pkt("done\n"), "0000"),
    );
    const mutation = mutationArbitrary(30);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 4, arbitrary: fc.tuple(valid, mutation) }, fc.tuple(fc.constant(null), mutation)),
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 40 }),
        async ([wire, m], random, sizes) => {
          const input = wire ? mutate(wire, m) : random;
          try {
            const req = await parseV2Request(chunkedStream(input, sizes));
            if (req.command === "fetch") parseFetchArgs(req.args);
            if (req.command === "ls-refs") parseLsRefsArgs(req.args);
            if (wire && m.kind === "none") expect(req.command).not.toBeNull();
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            if (wire && m.kind === "none") throw e;
          }
        },
      ),
      fuzzParams("v2-request", 2000),
    );
    // The fuzz inputs are framed like real ones.
    expect(decodePkts(lsRefs).length).toBe(10);
  });
});
