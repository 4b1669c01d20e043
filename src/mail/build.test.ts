import { describe, expect, it } from "vitest";
import {
  buildAgentReply,
  buildUserMessage,
  formatAddress,
  formatMailDate,
  formatMessageId,
  MailBuildError,
  normalizeText,
  type UserMessageInput,
} from "./build";
import { decodeQuotedPrintable, parseHeaderBlock, readEntity, splitMultipart } from "./mime";

const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

/** A signer that records what it was asked to sign. */
function recordingSigner() {
  const calls: Uint8Array[] = [];
  const sign = async (content: Uint8Array) => {
    calls.push(content);
    return "-----BEGIN PGP SIGNATURE-----\n\nc2ln\n-----END PGP SIGNATURE-----\n";
  };
  return { calls, sign };
}

function userInput(overrides: Partial<UserMessageInput> = {}): UserMessageInput {
  return {
    from: { name: "Ada Lovelace", email: "usr_1@acme.example" },
    to: { email: "ins_1@acme.example" },
    text: "hello agent",
    messageId: "sml_1@acme.example",
    date: new Date("2026-11-25T12:45:50Z"),
    headers: {
      "Interchange-Type": "conversation.message",
      "Interchange-Tenant-ID": "tnt_1",
      "Interchange-Session-ID": "ses_1",
    },
    sign: recordingSigner().sign,
    ...overrides,
  };
}

function headerNames(raw: Uint8Array): string[] {
  const head = text(raw).split("\r\n\r\n")[0] as string;
  return head
    .split("\r\n")
    .filter((l) => !l.startsWith(" "))
    .map((l) => l.slice(0, l.indexOf(":")));
}

describe("buildUserMessage", () => {
  it("writes the headers in a fixed order, CRLF only, and a multipart/signed body of two parts", async () => {
    const signer = recordingSigner();
    const raw = await buildUserMessage(
      userInput({
        sign: signer.sign,
        inReplyTo: "<prior-2@acme.example>",
        references: ["prior-1@acme.example", "<prior-2@acme.example>"],
      }),
    );
    const s = text(raw);
    expect(s.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    expect(headerNames(raw)).toEqual([
      "From",
      "To",
      "Date",
      "Message-ID",
      "In-Reply-To",
      "References",
      "MIME-Version",
      "Content-Type",
      "Interchange-Type",
      "Interchange-Tenant-ID",
      "Interchange-Session-ID",
    ]);
    expect(s).toContain('From: "Ada Lovelace" <usr_1@acme.example>\r\n');
    expect(s).toContain("To: ins_1@acme.example\r\n");
    expect(s).toContain("Date: Wed, 25 Nov 2026 12:45:50 +0000\r\n");
    expect(s).toContain("Message-ID: <sml_1@acme.example>\r\n");
    expect(s).toContain("In-Reply-To: <prior-2@acme.example>\r\n");
    expect(s).toContain("References: <prior-1@acme.example> <prior-2@acme.example>\r\n");
    const root = readEntity(raw);
    const ct = root.headers.find((h) => h.name === "content-type")?.value ?? "";
    expect(ct).toMatch(
      /^multipart\/signed; protocol="application\/pgp-signature"; micalg=pgp-sha512; boundary="----=_Part_[0-9a-f]{36}"$/,
    );
    const boundary = /boundary="([^"]+)"/.exec(ct)?.[1] as string;
    const parts = splitMultipart(root.body, boundary);
    expect(parts).toHaveLength(2);
    // The signer saw exactly the bytes of part 1, header lines included.
    expect(signer.calls).toHaveLength(1);
    expect(text(parts[0]?.raw as Uint8Array)).toBe(
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhello agent",
    );
    expect(text(signer.calls[0] as Uint8Array)).toBe(text(parts[0]?.raw as Uint8Array));
    expect(parts[1]?.headers[0]).toEqual({
      name: "content-type",
      value: 'application/pgp-signature; name="signature.asc"',
    });
    expect(text(parts[1]?.body as Uint8Array)).toBe(
      "-----BEGIN PGP SIGNATURE-----\r\n\r\nc2ln\r\n-----END PGP SIGNATURE-----",
    );
    expect(s.endsWith(`--${boundary}--\r\n`)).toBe(true);
  });

  it("omits threading headers when there are none and uses a fresh boundary each time", async () => {
    const a = text(await buildUserMessage(userInput()));
    const b = text(await buildUserMessage(userInput()));
    expect(a).not.toContain("In-Reply-To");
    expect(a).not.toContain("References");
    expect(/boundary="([^"]+)"/.exec(a)?.[1]).not.toBe(/boundary="([^"]+)"/.exec(b)?.[1]);
  });

  it("normalises line endings and strips trailing whitespace in the signed text", async () => {
    const signer = recordingSigner();
    await buildUserMessage(userInput({ sign: signer.sign, text: "line one  \nline two\t\r\n\rlast " }));
    const part = text(signer.calls[0] as Uint8Array);
    expect(part.slice(part.indexOf("\r\n\r\n") + 4)).toBe("line one\r\nline two\r\n\r\nlast");
  });

  it("uses quoted-printable for non-ASCII, long lines and lines starting with 'From '", async () => {
    const fromAfterSoftBreak = `ü${"y".repeat(69)}From the soft break`;
    for (const body of ["héllo wörld ✓", "x".repeat(1200), "From here on\nok", fromAfterSoftBreak]) {
      const signer = recordingSigner();
      await buildUserMessage(userInput({ sign: signer.sign, text: body }));
      const part = text(signer.calls[0] as Uint8Array);
      expect(part).toContain("Content-Transfer-Encoding: quoted-printable\r\n");
      const encoded = part.split("\r\n\r\n")[1] as string;
      for (const line of encoded.split("\r\n")) {
        expect(line.length).toBeLessThanOrEqual(76);
        expect(line).toMatch(/^[\x20-\x7e]*$/);
        expect(line.startsWith("From ")).toBe(false);
      }
      const decoded = text(decodeQuotedPrintable(new TextEncoder().encode(encoded)));
      expect(decoded).toBe(normalizeText(body));
    }
  });

  it("encodes non-ASCII header text (RFC 2047) and strips line breaks from every value", async () => {
    const raw = await buildUserMessage(
      userInput({
        from: { name: 'Zoë "Z" Müller-Lüdenscheidt, from the very long department of names', email: "z@acme.example" },
        subject: "Grüße\r\nBcc: victim@evil.example",
        headers: { "Interchange-Type": "conversation.message", "Interchange-Session-ID": "ses_1\r\nX-Evil: 1" },
      }),
    );
    const head = text(raw).split("\r\n\r\n")[0] as string;
    expect(head).not.toMatch(/^Bcc:/m);
    expect(head).not.toMatch(/^X-Evil:/m);
    for (const line of head.split("\r\n")) expect(line).toMatch(/^[\x20-\x7e]*$/);
    for (const line of head.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
    expect(head).toMatch(/^From: =\?UTF-8\?B\?/m);
    const fields = parseHeaderBlock(new TextEncoder().encode(head));
    expect(fields.find((f) => f.name === "interchange-session-id")?.value).toBe("ses_1 X-Evil: 1");
  });

  it("folds a long References header at 78 columns", async () => {
    const references = Array.from({ length: 100 }, (_, i) => `sml_${String(i).padStart(32, "0")}@acme.example`);
    const raw = await buildUserMessage(userInput({ references, inReplyTo: references[99] }));
    const head = text(raw).split("\r\n\r\n")[0] as string;
    const lines = head.split("\r\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    const refs = parseHeaderBlock(new TextEncoder().encode(head)).find((f) => f.name === "references")?.value ?? "";
    expect(refs.match(/<[^>]+>/g)).toEqual(references.map((r) => `<${r}>`));
  });

  it("refuses malformed addresses, message ids and extra header names", async () => {
    await expect(buildUserMessage(userInput({ to: { email: "a@b>\r\nBcc: x@y" } }))).rejects.toBeInstanceOf(
      MailBuildError,
    );
    await expect(buildUserMessage(userInput({ to: [] }))).rejects.toBeInstanceOf(MailBuildError);
    await expect(buildUserMessage(userInput({ messageId: "no at sign" }))).rejects.toBeInstanceOf(MailBuildError);
    await expect(buildUserMessage(userInput({ inReplyTo: "<a@b> <c@d>" }))).rejects.toBeInstanceOf(MailBuildError);
    await expect(buildUserMessage(userInput({ headers: { "Bad Name": "x" } }))).rejects.toBeInstanceOf(MailBuildError);
    await expect(buildUserMessage(userInput({ headers: { "content-type": "x" } }))).rejects.toBeInstanceOf(
      MailBuildError,
    );
    await expect(buildUserMessage(userInput({ date: new Date("nope") }))).rejects.toBeInstanceOf(MailBuildError);
  });
});

describe("buildAgentReply", () => {
  it("is a plain text/plain message from the agent, threaded, CRLF, no signature", () => {
    const raw = buildAgentReply({
      from: { email: "ins_1@acme.example" },
      to: [{ name: "Ada", email: "usr_1@acme.example" }],
      subject: "Re: hello",
      text: "hi\nthere",
      messageId: "<reply-1@acme.example>",
      inReplyTo: "sml_1@acme.example",
      references: ["sml_1@acme.example"],
      date: new Date("2026-01-05T08:09:10Z"),
    });
    expect(text(raw)).toBe(
      [
        "From: ins_1@acme.example",
        'To: "Ada" <usr_1@acme.example>',
        "Subject: Re: hello",
        "Date: Mon, 05 Jan 2026 08:09:10 +0000",
        "Message-ID: <reply-1@acme.example>",
        "In-Reply-To: <sml_1@acme.example>",
        "References: <sml_1@acme.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        "hi",
        "there",
      ].join("\r\n"),
    );
  });
});

describe("formatting helpers", () => {
  it("formats addresses, message ids and dates", () => {
    expect(formatAddress({ email: "a@b.example" })).toBe("a@b.example");
    expect(formatAddress({ name: 'Say "hi" \\ bye', email: "a@b.example" })).toBe(
      '"Say \\"hi\\" \\\\ bye" <a@b.example>',
    );
    expect(formatAddress({ name: "  ", email: "a@b.example" })).toBe("a@b.example");
    expect(() => formatAddress({ email: "nobody" })).toThrow(MailBuildError);
    expect(() => formatAddress({ email: "ü@b.example" })).toThrow(MailBuildError);
    expect(formatMessageId("x@y")).toBe("<x@y>");
    expect(formatMessageId(" <x@y> ")).toBe("<x@y>");
    expect(formatMailDate(new Date(0))).toBe("Thu, 01 Jan 1970 00:00:00 +0000");
  });
});
