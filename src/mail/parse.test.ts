import { describe, expect, it } from "vitest";
import { crlf, mixedMessage } from "../../test/workers/support/mail-samples";
import { buildAgentReply, buildUserMessage } from "./build";
import { generateMailKey, mailSigner } from "./keys";
import { MailParseError } from "./mime";
import { parseMailToEmail } from "./parse";

describe("parseMailToEmail", () => {
  it("maps a multipart/mixed message to the JMAP shape with IMAP part paths", () => {
    const email = parseMailToEmail(mixedMessage, "sml_x");
    expect(email).toEqual({
      from: [
        { name: "Zoë", email: "zoe@acme.example" },
        { name: null, email: "bob@acme.example" },
      ],
      to: [
        { name: "Agent, The", email: "ins_1@acme.example" },
        { name: null, email: "a@acme.example" },
        { name: null, email: "b@acme.example" },
      ],
      cc: [{ name: null, email: "carol@acme.example" }],
      subject: "Grüße and more",
      sentAt: "2026-11-25T11:45:50.000Z",
      messageId: "<m1@acme.example>",
      inReplyTo: "<m0@acme.example>",
      references: ["<root@acme.example>", "<m0@acme.example>"],
      bodyValues: {
        "1.1": { value: "Grüße, softbreak", isEncodingProblem: false },
        "1.2": { value: "<p>Grüße</p>", isEncodingProblem: false },
      },
      textBody: [{ partId: "1.1", type: "text/plain" }],
      htmlBody: [{ partId: "1.2", type: "text/html" }],
      attachments: [
        { blobId: "blob_sml_x_2", name: "dot.png", type: "image/png", size: 8 },
        { blobId: "blob_sml_x_3", name: "résumé.csv", type: "text/csv", size: 8 },
        { blobId: "blob_sml_x_4", name: "notes.txt", type: "text/plain", size: 13 },
      ],
      headers: { "interchange-type": "conversation.message", "interchange-tenant-id": "tnt_1" },
    });
  });

  it("walks only the signed content of a signed user message, and round-trips what the builder wrote", async () => {
    const key = await generateMailKey("ins_1@acme.example");
    const raw = await buildUserMessage({
      from: { name: "Ada Lovelace", email: "usr_1@acme.example" },
      to: { email: "ins_1@acme.example" },
      subject: "Grüße ✓",
      text: "héllo agent\nsecond line  ",
      messageId: "sml_1@acme.example",
      inReplyTo: "<p2@acme.example>",
      references: ["<p1@acme.example>", "<p2@acme.example>"],
      date: new Date("2026-11-25T12:45:50Z"),
      headers: {
        "Interchange-Type": "conversation.message",
        "Interchange-Tenant-ID": "tnt_1",
        "Interchange-Session-ID": "ses_1",
      },
      sign: await mailSigner(key.privateKeyArmored),
    });
    expect(parseMailToEmail(raw, "sml_1")).toEqual({
      from: [{ name: "Ada Lovelace", email: "usr_1@acme.example" }],
      to: [{ name: null, email: "ins_1@acme.example" }],
      cc: [],
      subject: "Grüße ✓",
      sentAt: "2026-11-25T12:45:50.000Z",
      messageId: "<sml_1@acme.example>",
      inReplyTo: "<p2@acme.example>",
      references: ["<p1@acme.example>", "<p2@acme.example>"],
      bodyValues: { "1": { value: "héllo agent\r\nsecond line", isEncodingProblem: false } },
      textBody: [{ partId: "1", type: "text/plain" }],
      htmlBody: [],
      attachments: [],
      headers: {
        "interchange-type": "conversation.message",
        "interchange-tenant-id": "tnt_1",
        "interchange-session-id": "ses_1",
      },
    });
  });

  it("parses the sidecar's plain reply as a single part '1'", () => {
    const raw = buildAgentReply({
      from: { email: "ins_1@acme.example" },
      to: { name: "Ada", email: "usr_1@acme.example" },
      text: "done",
      messageId: "r1@acme.example",
      inReplyTo: "sml_1@acme.example",
      references: ["sml_1@acme.example"],
      date: new Date("2026-11-25T12:45:50Z"),
    });
    const email = parseMailToEmail(raw, "sml_r");
    expect(email.bodyValues).toEqual({ "1": { value: "done", isEncodingProblem: false } });
    expect(email.textBody).toEqual([{ partId: "1", type: "text/plain" }]);
    expect(email.subject).toBeNull();
    expect(email.inReplyTo).toBe("<sml_1@acme.example>");
    expect(email.headers).toEqual({});
  });

  it("treats a message without headers or content type as text, a non-text single part as attachment '1'", () => {
    const bare = parseMailToEmail(new TextEncoder().encode("just text"), "m");
    expect(bare).toMatchObject({
      from: [],
      subject: null,
      sentAt: null,
      messageId: null,
      references: [],
      bodyValues: { "1": { value: "", isEncodingProblem: false } },
    });
    const pdf = parseMailToEmail(
      crlf(["Content-Type: application/pdf", "Content-Transfer-Encoding: base64", "", "JVBERi0="]),
      "m_1",
    );
    expect(pdf.attachments).toEqual([{ blobId: "blob_m_1_1", name: null, type: "application/pdf", size: 5 }]);
    expect(pdf.textBody).toEqual([]);
  });

  it("flags text it cannot decode instead of failing", () => {
    const bad = parseMailToEmail(
      crlf(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "", "/w=="]),
      "m",
    );
    expect(bad.bodyValues["1"]).toEqual({ value: "\ufffd", isEncodingProblem: true });
    const unknown = parseMailToEmail(crlf(["Content-Type: text/plain; charset=x-klingon", "", "qapla"]), "m");
    expect(unknown.bodyValues["1"]).toEqual({ value: "qapla", isEncodingProblem: true });
  });

  it("returns null for a Date that is not a date, and survives a truncated multipart", () => {
    const email = parseMailToEmail(
      crlf([
        "Date: 1",
        "Content-Type: multipart/mixed; boundary=b",
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "first",
        "--b",
        "Content-Type: text/plain",
        "",
        "cut off here",
      ]),
      "m",
    );
    expect(email.sentAt).toBeNull();
    expect(email.bodyValues).toEqual({
      "1": { value: "first", isEncodingProblem: false },
      "2": { value: "cut off here", isEncodingProblem: false },
    });
  });

  it("refuses nesting deeper than the limit with a MailParseError", () => {
    const lines: string[] = [];
    for (let i = 0; i < 40; i++) lines.push(`Content-Type: multipart/mixed; boundary=b${i}`, "", `--b${i}`);
    lines.push("Content-Type: text/plain", "", "deep");
    expect(() => parseMailToEmail(crlf(lines), "m")).toThrow(MailParseError);
  });
});
