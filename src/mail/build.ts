/**
 * MIME builders: the signed user → agent message of the hub (RFC 3156 `multipart/signed`) and the plain
 * agent reply of the sidecar. Output is CRLF throughout, headers are folded at 78 columns, non-ASCII
 * header text is RFC 2047 encoded and every value is stripped of line breaks (no header injection).
 * Web APIs only: the Node sidecar imports this file too.
 */
import { bytesToBase64 } from "../lib/base64";

export interface MailAddress {
  name?: string | null;
  email: string;
}

/** The input cannot become a well-formed message (bad address, message id or header name). */
export class MailBuildError extends Error {
  override name = "MailBuildError";
}

interface CommonMessageInput {
  from: MailAddress;
  to: MailAddress | MailAddress[];
  cc?: MailAddress[] | null;
  subject?: string | null;
  text: string;
  /** `id@domain`, with or without angle brackets. */
  messageId: string;
  inReplyTo?: string | null;
  /** Oldest first. */
  references?: string[] | null;
  date: Date;
  /** Extra headers written after Content-Type, in order (the `Interchange-*` headers). */
  headers?: Record<string, string>;
}

export interface UserMessageInput extends CommonMessageInput {
  headers: Record<string, string>;
  /** Returns an ASCII-armored detached signature over exactly the bytes given. */
  sign: (content: Uint8Array) => Promise<string>;
}

export type AgentReplyInput = CommonMessageInput;

const CRLF = "\r\n";
const encoder = new TextEncoder();

/**
 * The signed user message: `multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha512`
 * whose part 1 is the `text/plain` content and part 2 the detached signature over part 1's exact bytes
 * (its header lines, the blank line and the body, as RFC 3156 says).
 */
export async function buildUserMessage(input: UserMessageInput): Promise<Uint8Array> {
  const part1 = textPart(input.text);
  let boundary = newBoundary();
  while (part1.includes(boundary)) boundary = newBoundary();
  const signature = normalizeLineEndings((await input.sign(encoder.encode(part1))).trim());
  const head = [
    ...addressingHeaders(input),
    "MIME-Version: 1.0",
    foldHeader(
      "Content-Type",
      `multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha512; boundary="${boundary}"`,
    ),
    ...extraHeaders(input.headers),
  ];
  const message =
    head.join(CRLF) +
    CRLF +
    CRLF +
    `--${boundary}${CRLF}` +
    part1 +
    CRLF +
    `--${boundary}${CRLF}` +
    `Content-Type: application/pgp-signature; name="signature.asc"${CRLF}` +
    `Content-Description: OpenPGP digital signature${CRLF}` +
    CRLF +
    signature +
    CRLF +
    `--${boundary}--${CRLF}`;
  return encoder.encode(message);
}

/** A plain `text/plain; charset=utf-8` message (the sidecar's reply), threaded by the caller's headers. */
export function buildAgentReply(input: AgentReplyInput): Uint8Array {
  const head = [...addressingHeaders(input), "MIME-Version: 1.0", ...extraHeaders(input.headers ?? {})];
  // textPart starts with Content-Type and Content-Transfer-Encoding, then the blank line and body.
  return encoder.encode(head.join(CRLF) + CRLF + textPart(input.text));
}

/** Line endings to CRLF and trailing spaces and tabs stripped from every line. */
export function normalizeText(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => line.replace(/[ \t]+$/, ""))
    .join(CRLF);
}

/** `id@domain` or `<id@domain>` → `<id@domain>`; anything else is refused. */
export function formatMessageId(id: string): string {
  const bare = id.trim().replace(/^<(.*)>$/, "$1");
  if (!/^[^\s<>@]+@[^\s<>@]+$/.test(bare) || /[^\x21-\x7e]/.test(bare)) {
    throw new MailBuildError(`Invalid message id: ${JSON.stringify(id)}`);
  }
  return `<${bare}>`;
}

/** RFC 5322 date in UTC: `Wed, 25 Nov 2026 12:45:50 +0000`. */
export function formatMailDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new MailBuildError("Invalid date");
  return date.toUTCString().replace(/GMT$/, "+0000");
}

/** `----=_Part_` and 36 random hex digits; `=` and `_` cannot occur in quoted-printable output. */
export function newBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return `----=_Part_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** `Name <email>` with the name quoted or RFC 2047 encoded; the email is checked. */
export function formatAddress(address: MailAddress): string {
  const email = address.email.trim();
  if (email.length > 254 || !/^[^\s<>()[\]",;:\\@]+@[^\s<>()[\]",;:\\@]+$/.test(email) || /[^\x21-\x7e]/.test(email)) {
    throw new MailBuildError(`Invalid email address: ${JSON.stringify(address.email)}`);
  }
  const name = cleanHeaderText(address.name ?? "");
  if (!name) return email;
  const phrase = isPlainAscii(name) ? `"${name.replace(/(["\\])/g, "\\$1")}"` : encodeWords(name);
  return `${phrase} <${email}>`;
}

function addressingHeaders(input: CommonMessageInput): string[] {
  const to = Array.isArray(input.to) ? input.to : [input.to];
  if (to.length === 0) throw new MailBuildError("A message needs at least one recipient");
  const lines = [foldHeader("From", formatAddress(input.from)), foldHeader("To", to.map(formatAddress).join(", "))];
  if (input.cc && input.cc.length > 0) lines.push(foldHeader("Cc", input.cc.map(formatAddress).join(", ")));
  const subject = cleanHeaderText(input.subject ?? "");
  if (subject) lines.push(foldHeader("Subject", headerText(subject)));
  lines.push(`Date: ${formatMailDate(input.date)}`, `Message-ID: ${formatMessageId(input.messageId)}`);
  if (input.inReplyTo) lines.push(`In-Reply-To: ${formatMessageId(input.inReplyTo)}`);
  if (input.references && input.references.length > 0) {
    lines.push(foldHeader("References", input.references.map(formatMessageId).join(" ")));
  }
  return lines;
}

const RESERVED_HEADERS = new Set([
  "from",
  "to",
  "cc",
  "bcc",
  "subject",
  "date",
  "message-id",
  "in-reply-to",
  "references",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
]);

function extraHeaders(headers: Record<string, string>): string[] {
  return Object.entries(headers).map(([name, value]) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(name) || RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new MailBuildError(`Invalid extra header name: ${JSON.stringify(name)}`);
    }
    const clean = cleanHeaderText(value);
    return foldHeader(name, headerText(clean));
  });
}

/** The text/plain part: headers, blank line, body; 7bit when it can travel untouched, else quoted-printable. */
function textPart(text: string): string {
  const body = normalizeText(text);
  const lines = body.split(CRLF);
  const sevenBit = lines.every((line) => line.length <= 998 && !line.startsWith("From ") && isPlainAscii(line));
  if (sevenBit) {
    return `Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: 7bit${CRLF}${CRLF}${body}`;
  }
  return (
    `Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}` +
    lines.map(encodeQuotedPrintableLine).join(CRLF)
  );
}

/** Unstructured header text: as is when plain ASCII that cannot be mistaken for encoded words. */
function headerText(text: string): string {
  return isPlainAscii(text) && !text.includes("=?") ? text : encodeWords(text);
}

/** Printable ASCII plus space and tab. */
function isPlainAscii(text: string): boolean {
  return /^[\x20-\x7e\t]*$/.test(text);
}

/**
 * One line (no line breaks) as quoted-printable with soft breaks at 76 columns. A leading "From " is
 * escaped so mbox-style mangling by a relay cannot break the signature (RFC 3156 §3).
 */
function encodeQuotedPrintableLine(line: string): string {
  const bytes = encoder.encode(line);
  const tokens = Array.from(bytes, (b, i) =>
    (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && i < bytes.length - 1)
      ? String.fromCharCode(b)
      : hexEscape(b),
  );
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < tokens.length; i++) {
    let token = tokens[i] as string;
    if (current.length + token.length > 75) {
      out.push(`${current}=`);
      current = "";
    }
    // Any encoded line, first or after a soft break, must not start with "From ".
    if (current === "" && token === "F" && tokens.slice(i + 1, i + 5).join("") === "rom ") token = hexEscape(70);
    current += token;
  }
  out.push(current);
  return out.join(CRLF);
}

function hexEscape(b: number): string {
  return `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
}

/** Line breaks and other control characters become spaces; runs of them collapse. */
function cleanHeaderText(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
}

/**
 * RFC 2047 `=?UTF-8?B?…?=` words of at most 45 bytes of text each (72 characters), split on
 * character boundaries, separated by spaces (which decoders drop between encoded words).
 */
function encodeWords(text: string): string {
  const words: string[] = [];
  let chunk: number[] = [];
  for (const ch of text) {
    const bytes = encoder.encode(ch);
    if (chunk.length + bytes.length > 45) {
      words.push(encodeWord(chunk));
      chunk = [];
    }
    chunk.push(...bytes);
  }
  if (chunk.length > 0) words.push(encodeWord(chunk));
  return words.join(" ");
}

function encodeWord(bytes: number[]): string {
  return `=?UTF-8?B?${bytesToBase64(Uint8Array.from(bytes))}?=`;
}

/** `Name: value` folded at spaces so lines stay within 78 characters where the value allows it. */
function foldHeader(name: string, value: string): string {
  const lines: string[] = [];
  let current = `${name}:`;
  let hasWord = false;
  for (const word of value.split(" ")) {
    if (word && hasWord && current.length + 1 + word.length > 78) {
      lines.push(current);
      current = "";
    }
    current += ` ${word}`;
    hasWord ||= word.length > 0;
  }
  lines.push(current);
  return lines.join(CRLF);
}

function normalizeLineEndings(text: string): string {
  return text.split(/\r\n|\r|\n/).join(CRLF);
}
