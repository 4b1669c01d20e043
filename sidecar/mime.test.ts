import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { buildReply, parseInbound } from "./mime";
import { userMail } from "./support/fake-hub";

const b64 = (lines: string[]) => Buffer.from(lines.join("\r\n"), "utf8").toString("base64");

describe("parseInbound", () => {
  it("reads the signed text part of the hub's user mail, never the signature", () => {
    const mail = parseInbound(
      userMail({
        from: "ada@example.com",
        to: "ins_1@acme.agent-hub.local",
        text: "first line\r\nsecond line",
        messageId: "<m2@hub.test>",
        subject: "Plans",
        inReplyTo: "<r1@acme.agent-hub.local>",
        references: ["<m1@hub.test>", "<r1@acme.agent-hub.local>"],
      }),
      "mail_1",
    );
    expect(mail).toEqual({
      messageId: "<m2@hub.test>",
      from: "ada@example.com",
      replyTo: "ada@example.com",
      subject: "Plans",
      inReplyTo: "<r1@acme.agent-hub.local>",
      references: ["<m1@hub.test>", "<r1@acme.agent-hub.local>"],
      autoSubmitted: false,
      text: "first line\nsecond line",
    });
  });

  it("decodes quoted-printable UTF-8, prefers Reply-To and sees Auto-Submitted", () => {
    const mail = parseInbound(
      b64([
        'From: "Zoë" <zoe@example.com>',
        "Reply-To: Team <team@example.com>",
        "Subject: =?UTF-8?B?R3LDvMOfZQ==?=",
        "Auto-Submitted: auto-generated",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Gr=C3=BC=C3=9Fe aus K=C3=B6ln",
        "",
      ]),
      "mail_2",
    );
    expect(mail.from).toBe("zoe@example.com");
    expect(mail.replyTo).toBe("team@example.com");
    expect(mail.subject).toBe("Grüße");
    expect(mail.autoSubmitted).toBe(true);
    expect(mail.text).toBe("Grüße aus Köln");
    expect(mail.messageId).toBeNull();
  });

  it("treats `Auto-Submitted: no` as written by a person", () => {
    const mail = parseInbound(b64(["From: a@b.test", "Auto-Submitted: no", "", "hi", ""]), "m");
    expect(mail.autoSubmitted).toBe(false);
  });
});

describe("buildReply", () => {
  it("builds a threaded, marked reply that a mail parser reads back, non-ASCII included", async () => {
    const { rawMessage, messageId } = buildReply({
      from: "ins_1@acme.agent-hub.local",
      to: "ada@example.com",
      subject: "Grüße",
      inReplyTo: "<m2@hub.test>",
      references: ["<m1@hub.test>"],
      text: "Echo: Grüße aus Köln\nzweite Zeile",
      interchange: { Type: "conversation.message", "Tenant-ID": "tnt_1", "Session-ID": "ses_1" },
    });
    expect(messageId).toMatch(/^<[0-9a-f]{32}@acme\.agent-hub\.local>$/);
    const raw = Buffer.from(rawMessage, "base64").toString("utf8");
    expect(raw).not.toMatch(/[^\r]\n/); // CRLF only
    const parsed = await PostalMime.parse(raw);
    expect(parsed.from?.address).toBe("ins_1@acme.agent-hub.local");
    expect(parsed.to?.map((a) => a.address)).toEqual(["ada@example.com"]);
    expect(parsed.subject).toBe("Re: Grüße");
    expect(parsed.messageId).toBe(messageId);
    expect(parsed.inReplyTo).toBe("<m2@hub.test>");
    expect(parsed.references).toBe("<m1@hub.test> <m2@hub.test>");
    expect(parsed.text?.replace(/\r\n/g, "\n").trim()).toBe("Echo: Grüße aus Köln\nzweite Zeile");
    const headers = Object.fromEntries(parsed.headers.map((h) => [h.key, h.value]));
    expect(headers["auto-submitted"]).toBe("auto-replied");
    expect(headers["interchange-tenant-id"]).toBe("tnt_1");
    expect(headers["interchange-session-id"]).toBe("ses_1");
    // Its own reply is recognised as automatic by the sidecar reading it.
    expect(parseInbound(rawMessage, "own").autoSubmitted).toBe(true);
  });

  it("does not stack `Re:` and starts a thread when there is nothing to answer", async () => {
    const { rawMessage } = buildReply({
      from: "ins_1@acme.agent-hub.local",
      to: "ada@example.com",
      subject: "RE: plans",
      inReplyTo: null,
      references: [],
      text: "ok",
      interchange: {},
    });
    const parsed = await PostalMime.parse(Buffer.from(rawMessage, "base64"));
    expect(parsed.subject).toBe("RE: plans");
    expect(parsed.inReplyTo).toBeUndefined();
    expect(parsed.references).toBeUndefined();
  });
});
