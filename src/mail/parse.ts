/**
 * Raw MIME → the JMAP-shaped email of the hub's MailResponse (without the row fields). Part paths are
 * IMAP-style ("1", "1.2"); a `multipart/signed` contributes only its signed content (part 1), never the
 * signature. Signatures are not checked here (see verify.ts). Web APIs and postal-mime only: the Node
 * sidecar imports this file too.
 */
import { addressParser } from "postal-mime";
import {
  childParts,
  contentInfo,
  decodeBody,
  decodeText,
  type HeaderField,
  headerValue,
  MAX_MIME_DEPTH,
  MailParseError,
  type MimeEntity,
  readEntity,
  safeDecodeWords,
} from "./mime";
import { blobIdFor } from "./parts";

export interface EmailAddress {
  name: string | null;
  email: string;
}

export interface EmailBodyValue {
  value: string;
  /** The declared charset was unknown or the bytes were invalid in it (decoded as UTF-8 instead). */
  isEncodingProblem: boolean;
}

export interface EmailBodyPart {
  partId: string;
  type: string;
}

export interface EmailAttachment {
  blobId: string;
  name: string | null;
  type: string;
  /** Decoded size in bytes: what the blob download returns. */
  size: number;
}

export interface ParsedEmail {
  from: EmailAddress[];
  to: EmailAddress[];
  cc: EmailAddress[];
  subject: string | null;
  /** The Date header as ISO 8601, null when absent or not a date. */
  sentAt: string | null;
  /** `<id@domain>` as in the header. */
  messageId: string | null;
  inReplyTo: string | null;
  /** Oldest first, `<id@domain>` each. */
  references: string[];
  bodyValues: Record<string, EmailBodyValue>;
  textBody: EmailBodyPart[];
  htmlBody: EmailBodyPart[];
  attachments: EmailAttachment[];
  /** Only the `interchange-*` headers, names lower-cased, first occurrence wins. */
  headers: Record<string, string>;
}

/** Parses the whole message; throws only `MailParseError`. */
export function parseMailToEmail(raw: Uint8Array, mailId: string): ParsedEmail {
  if (!(raw instanceof Uint8Array)) throw new MailParseError("Mail must be bytes");
  try {
    const root = readEntity(raw);
    const email: ParsedEmail = {
      from: addresses(root.headers, "from"),
      to: addresses(root.headers, "to"),
      cc: addresses(root.headers, "cc"),
      subject: unstructured(root.headers, "subject"),
      sentAt: mailDate(headerValue(root.headers, "date")),
      messageId: messageIds(headerValue(root.headers, "message-id"))[0] ?? null,
      inReplyTo: messageIds(headerValue(root.headers, "in-reply-to"))[0] ?? null,
      references: messageIds(headerValue(root.headers, "references")),
      bodyValues: {},
      textBody: [],
      htmlBody: [],
      attachments: [],
      headers: interchangeHeaders(root.headers),
    };
    walk(root, "", 0, mailId, email);
    return email;
  } catch (err) {
    if (err instanceof MailParseError) throw err;
    throw new MailParseError("Unparseable mail", { cause: err });
  }
}

function walk(entity: MimeEntity, path: string, depth: number, mailId: string, email: ParsedEmail): void {
  const info = contentInfo(entity);
  const children = childParts(entity, info);
  if (children) {
    if (depth >= MAX_MIME_DEPTH) throw new MailParseError("MIME nesting too deep");
    const walked = info.mimeType === "multipart/signed" ? children.slice(0, 1) : children;
    walked.forEach((child, i) => {
      walk(child, path ? `${path}.${i + 1}` : `${i + 1}`, depth + 1, mailId, email);
    });
    return;
  }
  const partId = path || "1";
  const body = decodeBody(entity.body, info.transferEncoding);
  const isBodyText = info.mimeType === "text/plain" || info.mimeType === "text/html";
  if (info.disposition === "attachment" || !isBodyText) {
    email.attachments.push({
      blobId: blobIdFor(mailId, partId),
      name: info.filename,
      type: info.mimeType,
      size: body.byteLength,
    });
    return;
  }
  email.bodyValues[partId] = decodeText(body, info.params.charset);
  (info.mimeType === "text/html" ? email.htmlBody : email.textBody).push({ partId, type: info.mimeType });
}

function addresses(headers: HeaderField[], name: string): EmailAddress[] {
  const value = headerValue(headers, name);
  if (!value) return [];
  let parsed: ReturnType<typeof addressParser>;
  try {
    parsed = addressParser(value, { flatten: true });
  } catch {
    return [];
  }
  const out: EmailAddress[] = [];
  for (const entry of parsed) {
    if (entry.group || !entry.address) continue;
    out.push({ name: entry.name?.trim() || null, email: entry.address });
  }
  return out;
}

function unstructured(headers: HeaderField[], name: string): string | null {
  const value = headerValue(headers, name);
  return value === null ? null : safeDecodeWords(value);
}

/** `<a@b> <c@d>` → both; a header without angle brackets is split on whitespace. */
function messageIds(value: string | null): string[] {
  if (!value) return [];
  const bracketed = value.match(/<[^<>\s]+>/g);
  if (bracketed) return bracketed;
  return value.split(/[\s,]+/).filter((id) => id.length > 0);
}

const RFC5322_DATE = /^\s*(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?/;
const ISO_DATE = /^\s*\d{4}-\d{2}-\d{2}T/;

function mailDate(value: string | null): string | null {
  if (!value || !(RFC5322_DATE.test(value) || ISO_DATE.test(value))) return null;
  const time = Date.parse(value.replace(/\s*\([^)]*\)\s*$/, ""));
  return Number.isNaN(time) ? null : new Date(time).toISOString();
}

function interchangeHeaders(headers: HeaderField[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { name, value } of headers) {
    if (name.startsWith("interchange-") && !(name in out)) out[name] = safeDecodeWords(value);
  }
  return out;
}
