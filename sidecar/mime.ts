/**
 * The sidecar's mail, on top of the hub's own MIME code (src/mail, Web APIs only): read what the hub
 * delivers (`mail.inbound`, base64 MIME) and build the agent's reply, threaded to the message it answers.
 */
import { randomBytes } from "node:crypto";
import { addressParser } from "postal-mime";
import { buildAgentReply } from "../src/mail/build";
import { headerValue, readEntity } from "../src/mail/mime";
import { parseMailToEmail } from "../src/mail/parse";

export type InboundMail = {
  /** `<…>` as in the header; null when the message has none. */
  messageId: string | null;
  from: string | null;
  /** Where a reply goes: `Reply-To` when present, else `From`. */
  replyTo: string | null;
  subject: string | null;
  /** The message it answers, `<…>`; null when none. */
  inReplyTo: string | null;
  /** Oldest first, `<…>` each. */
  references: string[];
  /** `Auto-Submitted` is present and not `no` (RFC 3834): a machine wrote it. */
  autoSubmitted: boolean;
  /** The text/plain body (a signed message's signature is never part of it). */
  text: string;
};

function firstAddress(value: string | null): string | null {
  if (!value) return null;
  try {
    return addressParser(value, { flatten: true }).find((a) => a.address)?.address ?? null;
  } catch {
    return null;
  }
}

/** Throws `MailParseError` for mail beyond the parser's structural limits. */
export function parseInbound(base64: string, mailId: string): InboundMail {
  const raw = new Uint8Array(Buffer.from(base64, "base64"));
  const email = parseMailToEmail(raw, mailId);
  const headers = readEntity(raw).headers;
  const from = email.from[0]?.email ?? null;
  const autoSubmitted = headerValue(headers, "auto-submitted");
  return {
    messageId: email.messageId,
    from,
    replyTo: firstAddress(headerValue(headers, "reply-to")) ?? from,
    subject: email.subject,
    inReplyTo: email.inReplyTo,
    references: email.references,
    autoSubmitted: autoSubmitted !== null && autoSubmitted.trim().toLowerCase() !== "no",
    text: email.textBody
      .map((part) => email.bodyValues[part.partId]?.value ?? "")
      .join("\n")
      .replace(/\r\n/g, "\n")
      .trim(),
  };
}

export function newMessageId(fromAddress: string): string {
  const domain = fromAddress.split("@")[1] ?? "sidecar.local";
  return `<${randomBytes(16).toString("hex")}@${domain}>`;
}

export type ReplyInput = {
  from: string;
  to: string;
  subject: string | null;
  inReplyTo: string | null;
  references: string[];
  text: string;
  /** `Interchange-*` headers (without the prefix), e.g. `{ "Tenant-ID": "tnt_…" }`. */
  interchange: Record<string, string>;
};

/** A complete text/plain reply (raw bytes, base64 for the wire) and its Message-ID. */
export function buildReply(input: ReplyInput): { rawMessage: string; messageId: string } {
  const messageId = newMessageId(input.from);
  const subject = input.subject ? (/^re:/i.test(input.subject) ? input.subject : `Re: ${input.subject}`) : null;
  const references = [...input.references];
  if (input.inReplyTo && !references.includes(input.inReplyTo)) references.push(input.inReplyTo);
  const headers: Record<string, string> = {
    // The agent answers by itself: mark it so that other agents do not answer it in turn (RFC 3834).
    "Auto-Submitted": "auto-replied",
  };
  for (const [name, value] of Object.entries(input.interchange)) headers[`Interchange-${name}`] = value;
  const raw = buildAgentReply({
    from: { email: input.from },
    to: { email: input.to },
    subject,
    text: input.text,
    messageId,
    inReplyTo: input.inReplyTo,
    references,
    date: new Date(),
    headers,
  });
  return { rawMessage: Buffer.from(raw).toString("base64"), messageId };
}
