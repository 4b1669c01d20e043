import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ZERO_OID } from "../objects/oid";
import { ProtocolError } from "./errors";
import { concatBytes, readAllBytes } from "./pkt-line";
import { parseReceiveRequest, parseReceiveRequestBytes } from "./receive-request";
import {
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

const pack = concatBytes([bytes("PACK"), new Uint8Array([0, 0, 0, 2, 0, 0, 0, 0]), new Uint8Array(20).fill(9)]);

function request(lines: string[], tail: Uint8Array = pack): Uint8Array {
  return concatBytes([bytes(lines.map(pkt).join("")), bytes("0000"), tail]);
}

async function rejects(input: Uint8Array, message: string | RegExp, options = {}): Promise<ProtocolError> {
  const err = await parseReceiveRequestBytes(input, options).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).message).toMatch(message);
  return err as ProtocolError;
}

describe("receive-pack request", () => {
  it("parses a push: first command with NUL capabilities, a flush, then the pack", async () => {
    const req = await parseReceiveRequestBytes(
      request([`${ZERO_OID} ${oidA} refs/heads/main\0 report-status side-band-64k atomic agent=git/2.43.0`]),
    );
    expect(req.commands).toEqual([
      { kind: "create", oldOid: ZERO_OID, newOid: oidA, ref: "refs/heads/main", refError: null },
    ]);
    expect(req.capabilities).toEqual(["report-status", "side-band-64k", "atomic", "agent=git/2.43.0"]);
    expect(req.packExpected).toBe(true);
    expect(req.pushOptions).toBeNull();
    expect(req.pack).toEqual(pack);
  });

  it("keeps command order, classifies updates and deletes, accepts a trailing LF", async () => {
    const req = await parseReceiveRequestBytes(
      request([
        `${oidA} ${oidB} refs/heads/main\0report-status\n`,
        `${oidC} ${ZERO_OID} refs/heads/old\n`,
        `${ZERO_OID} ${oidC} refs/tags/v1`,
      ]),
    );
    expect(req.commands.map((c) => [c.kind, c.ref, c.oldOid])).toEqual([
      ["update", "refs/heads/main", oidA],
      ["delete", "refs/heads/old", oidC],
      ["create", "refs/tags/v1", ZERO_OID],
    ]);
  });

  it("expects no pack for deletes only", async () => {
    const req = await parseReceiveRequestBytes(
      request([`${oidA} ${ZERO_OID} refs/heads/gone\0report-status`], new Uint8Array(0)),
    );
    expect(req.packExpected).toBe(false);
    expect(req.pack.length).toBe(0);
  });

  it("streams the pack after commands split across chunks", async () => {
    const bigPack = new Uint8Array(200_000).map((_, i) => i & 255);
    const wire = request([`${ZERO_OID} ${oidA} refs/heads/main\0report-status`], bigPack);
    const req = await parseReceiveRequest(chunkedStream(wire, [1, 1, 1, 5, 33, 7, 4096]));
    expect(req.commands).toHaveLength(1);
    expect(await readAllBytes(req.pack)).toEqual(bigPack);
  });

  it("reads push options when the client asked for them", async () => {
    const wire = concatBytes([
      bytes(pkt(`${oidA} ${oidB} refs/heads/main\0report-status push-options`)),
      bytes("0000"),
      bytes(pkt("ci.skip\n") + pkt("reviewer=alice")),
      bytes("0000"),
      pack,
    ]);
    const req = await parseReceiveRequestBytes(wire);
    expect(req.pushOptions).toEqual(["ci.skip", "reviewer=alice"]);
    expect(req.pack).toEqual(pack);
  });

  it("takes leading shallow lines of a shallow client", async () => {
    const req = await parseReceiveRequestBytes(
      request([`shallow ${oidC}`, `${oidA} ${oidB} refs/heads/main\0report-status`]),
    );
    expect(req.shallows).toEqual([oidC]);
    expect(req.commands).toHaveLength(1);
  });

  it("parses a ref git refuses but marks it, so the report can say ng for that ref alone", async () => {
    const req = await parseReceiveRequestBytes(
      request([
        `${oidA} ${oidB} refs/heads/main\0report-status`,
        `${ZERO_OID} ${oidB} refs/heads/x.lock`,
        `${ZERO_OID} ${oidB} HEAD`,
      ]),
    );
    expect(req.commands.map((c) => c.refError)).toEqual([
      null,
      "ref name component ends with .lock",
      "ref name must start with refs/",
    ]);
  });

  it("refuses deletes when delete-refs was not advertised", async () => {
    const err = await rejects(request([`${oidA} ${ZERO_OID} refs/heads/main`]), "deleting refs is not supported", {
      advertised: ["report-status"],
    });
    expect(err.code).toBe("unsupported");
  });

  it.each([
    [`${oidA} ${oidB}`, "malformed command"],
    [`${oidA} ${oidB} `, "malformed command: bad ref name"],
    [`${oidA}  ${oidB} refs/heads/main`, "malformed command"],
    [`${oidA.toUpperCase()} ${oidB} refs/heads/main`, "malformed command"],
    [`${ZERO_OID} ${ZERO_OID} refs/heads/main`, "both object ids are zero"],
    [`${oidA} ${oidB} refs/heads/a b`, "malformed command: bad ref name"],
    [`${oidA} ${oidB} refs/heads/a\tb`, "malformed command: bad ref name"],
    ["push-cert\0report-status", "push certificates are not supported"],
  ])("rejects the command %j", async (line, message) => {
    await rejects(request([line]), message);
  });

  it("accepts git's large-push probe (no commands) and rejects a missing flush and stray packets", async () => {
    const probe = await parseReceiveRequestBytes(bytes("0000"));
    expect(probe.commands).toEqual([]);
    expect(probe.packExpected).toBe(false);
    await rejects(bytes(pkt(`${oidA} ${oidB} refs/heads/main`)), "request ends before the flush after the commands");
    await rejects(bytes(`${pkt(`${oidA} ${oidB} refs/heads/main`)}0001`), "unexpected delim packet");
    await rejects(
      concatBytes([request([`${oidA} ${oidB} refs/heads/main\0push-options`], new Uint8Array(0)), bytes(pkt("x"))]),
      "request ends before the flush after the push options",
    );
    await rejects(request([`${oidA} ${oidB} refs/heads/main`, `shallow ${oidC}`]), "shallow line after a command");
    await rejects(bytes("00"), "truncated pkt-line");
  });

  it("fuzz: valid bodies parse; random, mutated and truncated ones yield a ProtocolError, never hang", async () => {
    const oid = fc.stringMatching(/^[0-9a-f]{40}$/);
    const ref = fc.stringMatching(/^refs\/(heads|tags)\/[a-z0-9][a-z0-9/._-]{0,20}$/);
    const command = fc
      .tuple(fc.oneof(oid, fc.constant(ZERO_OID)), fc.oneof(oid, fc.constant(ZERO_OID)), ref)
      .filter(([o, n]) => o !== ZERO_OID || n !== ZERO_OID);
    const valid = fc
      .record({
        shallows: fc.array(oid, { maxLength: 2 }),
        commands: fc.array(command, { minLength: 1, maxLength: 4 }),
        caps: fc.subarray(["report-status", "side-band-64k", "atomic", "quiet", "push-options", "agent=git/2.43"]),
        options: fc.array(fc.stringMatching(/^[a-z.=]{1,12}$/), { maxLength: 3 }),
        pack: fc.uint8Array({ maxLength: 64 }),
      })
      .map((r) => {
        const pushOptions = r.caps.includes("push-options");
        const lines = [
          ...r.shallows.map((o) => pkt(`shallow ${o}`)),
          ...r.commands.map(([o, n, name], i) => pkt(`${o} ${n} ${name}${i === 0 ? `\0${r.caps.join(" ")}` : ""}\n`)),
          "0000",
          ...(pushOptions ? [...r.options.map((x) => pkt(`${x}\n`)), "0000"] : []),
        ];
        return { ...r, pushOptions, wire: concatBytes([bytes(lines.join("")), r.pack]) };
      });
    const mutation = mutationArbitrary(90);
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
            const req = await parseReceiveRequest(chunkedStream(wire, sizes));
            const pack = await readAllBytes(req.pack);
            // No commands is the large-push probe: nothing else may come with it.
            if (req.commands.length === 0) expect(req.packExpected).toBe(false);
            for (const c of req.commands) expect(c.ref).not.toMatch(/[\s\0]/);
            if (model && m.kind === "none") {
              expect(req.commands.map((c) => [c.oldOid, c.newOid, c.ref])).toEqual(model.commands);
              expect(req.packExpected).toBe(model.commands.some(([, n]) => n !== ZERO_OID));
              expect(req.shallows).toEqual(model.shallows);
              expect(req.pushOptions).toEqual(model.pushOptions ? model.options : null);
              expect(pack).toEqual(model.pack);
            }
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
            if (model && m.kind === "none") throw e;
          }
        },
      ),
      fuzzParams("receive-request", 3000),
    );
  });
});
