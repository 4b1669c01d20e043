import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mixedMessage } from "../../test/workers/support/mail-samples";
import { buildAgentReply, buildUserMessage } from "./build";
import { MailParseError, MailPartNotFound } from "./mime";
import { parseMailToEmail } from "./parse";
import { extractPart } from "./parts";

const encoder = new TextEncoder();

/** Runs `fn`; a thrown error must be one of `allowed`. Returns the value or undefined. */
function onlyTyped<T>(fn: () => T, allowed: (new (...args: never[]) => Error)[]): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!allowed.some((type) => err instanceof type)) throw err;
    return undefined;
  }
}

const paths = fc.oneof(
  fc.constantFrom("1", "2", "3", "1.1", "1.2", "2.1", "0", "1.1.1", "99"),
  fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }).map((xs) => xs.join(".")),
  fc.string({ maxLength: 8 }),
);

/** Parse and extract must agree: every part the parser names can be extracted at its size. */
function checkConsistency(raw: Uint8Array) {
  const email = onlyTyped(() => parseMailToEmail(raw, "sml_f"), [MailParseError]);
  if (!email) return;
  for (const att of email.attachments) {
    const path = att.blobId.slice("blob_sml_f_".length);
    const part = extractPart(raw, path);
    expect(part.body.byteLength).toBe(att.size);
    expect(part.contentType.split(";")[0]).toBe(att.type);
  }
  for (const id of Object.keys(email.bodyValues)) expect(() => extractPart(raw, id)).not.toThrow();
}

/** Random MIME trees: multiparts with random boundaries, transfer encodings and junk lines. */
const line = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("", "--", "=", "=\r", "=4", "=ZZ", "--b", "--b--", "--b1", "Content-Type: text/plain", " folded"),
);
const leaf = fc
  .record({
    type: fc.constantFrom(
      "text/plain",
      "text/html",
      "image/png",
      "application/pdf",
      "text/csv",
      "message/rfc822",
      "nonsense",
    ),
    cte: fc.constantFrom("7bit", "base64", "quoted-printable", "8bit", "x-weird"),
    disposition: fc.constantFrom(
      "",
      'Content-Disposition: attachment; filename="a.bin"',
      "Content-Disposition: inline",
    ),
    charset: fc.constantFrom("utf-8", "iso-8859-1", "x-unknown", ""),
    body: fc.array(line, { maxLength: 6 }),
  })
  .map(({ type, cte, disposition, charset, body }) =>
    [
      `Content-Type: ${type}${charset ? `; charset=${charset}` : ""}`,
      `Content-Transfer-Encoding: ${cte}`,
      ...(disposition ? [disposition] : []),
      "",
      ...body,
    ].join("\r\n"),
  );
const { tree } = fc.letrec<{ tree: string }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc
      .record({
        sub: fc.constantFrom("mixed", "alternative", "signed", "related"),
        boundary: fc.constantFrom("b", "b1", "b 2", "x=y"),
        children: fc.array(tie("tree"), { maxLength: 4 }),
        close: fc.boolean(),
        junk: fc.array(line, { maxLength: 2 }),
      })
      .map(({ sub, boundary, children, close, junk }) =>
        [
          `Content-Type: multipart/${sub}; boundary="${boundary}"`,
          "",
          ...junk,
          ...children.flatMap((child) => [`--${boundary}`, child]),
          ...(close ? [`--${boundary}--`] : []),
        ].join("\r\n"),
      ),
  ),
}));

async function signedSample(): Promise<Uint8Array> {
  return buildUserMessage({
    from: { name: "Ada", email: "usr_1@acme.example" },
    to: { email: "ins_1@acme.example" },
    subject: "Grüße",
    text: "héllo\nagent",
    messageId: "sml_1@acme.example",
    references: ["a@b.example"],
    date: new Date("2026-11-25T12:45:50Z"),
    headers: { "Interchange-Type": "conversation.message" },
    sign: async () => "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----",
  });
}

describe("mail parsing under hostile input", () => {
  it("random bytes: parse and extract return or throw only typed errors", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), paths, (raw, path) => {
        onlyTyped(() => parseMailToEmail(raw, "m"), [MailParseError]);
        onlyTyped(() => extractPart(raw, path), [MailParseError, MailPartNotFound]);
      }),
      { numRuns: 500 },
    );
  });

  it("random MIME trees: parse and extract agree on every part", () => {
    fc.assert(
      fc.property(tree, paths, (message, path) => {
        const raw = encoder.encode(message);
        checkConsistency(raw);
        onlyTyped(() => extractPart(raw, path), [MailParseError, MailPartNotFound]);
      }),
      { numRuns: 400 },
    );
  });

  it("every truncation and single-byte corruption of valid messages", async () => {
    const samples = [
      mixedMessage,
      await signedSample(),
      buildAgentReply({
        from: { email: "ins_1@acme.example" },
        to: { email: "u@acme.example" },
        text: "ok ✓",
        messageId: "r@acme.example",
        date: new Date(0),
      }),
    ];
    for (const sample of samples) {
      for (let n = 0; n <= sample.length; n++) checkConsistency(sample.subarray(0, n));
    }
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        paths,
        (sample, at, byte, path) => {
          const raw = sample.slice();
          raw[at % raw.length] = byte;
          checkConsistency(raw);
          onlyTyped(() => extractPart(raw, path), [MailParseError, MailPartNotFound]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("pathological shapes finish quickly", () => {
    const big = (s: string, times: number) => encoder.encode(s.repeat(times));
    const cases = [
      big("\n", 500_000),
      big("a", 1_000_000),
      big("X-H: v\r\n", 50_000),
      big(" folded\r\n", 50_000),
      encoder.encode(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${"--b\r\n".repeat(900)}`),
      encoder.encode(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${"--b\r\n".repeat(5000)}`),
      encoder.encode(`Content-Type: text/plain; ${"a*0*=x; ".repeat(20_000)}\r\n\r\nx`),
      encoder.encode(`From: ${"<a@b>, ".repeat(5_000)}\r\nSubject: ${"=?UTF-8?B?w7w=?= ".repeat(5_000)}\r\n\r\nx`),
      encoder.encode(
        `Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${"=\r\n=".repeat(200_000)}`,
      ),
      encoder.encode(
        `${Array.from(
          { length: 31 },
          (_, i) => `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`,
        ).join("")}Content-Type: application/pdf\r\n\r\n${"x".repeat(300_000)}`,
      ),
    ];
    for (const raw of cases) {
      const started = Date.now();
      onlyTyped(() => parseMailToEmail(raw, "m"), [MailParseError]);
      onlyTyped(() => extractPart(raw, "1.1.1"), [MailParseError, MailPartNotFound]);
      expect(Date.now() - started).toBeLessThan(2_000);
    }
    expect(() => parseMailToEmail(cases[5] as Uint8Array, "m")).toThrow(MailParseError);
  });

  it("refuses non-bytes with a typed error", () => {
    expect(() => parseMailToEmail("text" as unknown as Uint8Array, "m")).toThrow(MailParseError);
  });
});
