/**
 * A small byte-exact MIME structure reader: header blocks, Content-Type parameters (RFC 2045/2231),
 * multipart splitting (RFC 2046) and transfer decoding. It keeps every entity as a view into the raw
 * bytes so part paths and signed content are exact. Web APIs only (runs in workerd and Node).
 *
 * Lenient by design (mail is hostile input): anything it cannot make sense of degrades to a leaf part;
 * the only errors are `MailParseError` for structural limits and `MailPartNotFound` for bad paths.
 */
import { decodeWords } from "postal-mime";

/** Mail bytes that cannot be parsed within the limits. */
export class MailParseError extends Error {
  override name = "MailParseError";
}

/** The part path does not name a part of the message. */
export class MailPartNotFound extends Error {
  override name = "MailPartNotFound";
}

/** Multipart nesting deeper than this is refused (real mail stays under 10). */
export const MAX_MIME_DEPTH = 32;
/** More parts than this in one message is refused. */
export const MAX_MIME_PARTS = 1000;

export interface HeaderField {
  /** Lower-cased name. */
  name: string;
  /** Unfolded value, trimmed, not decoded. */
  value: string;
}

export interface MimeEntity {
  /** The whole entity: header block and body. */
  raw: Uint8Array;
  headers: HeaderField[];
  /** The body as transferred (still base64 / quoted-printable encoded). */
  body: Uint8Array;
}

export interface ParsedHeaderValue {
  /** Lower-cased value before the first `;` (e.g. `text/plain`, `attachment`). */
  value: string;
  /** Lower-cased parameter names, RFC 2231 continuations and charsets decoded. */
  params: Record<string, string>;
}

const LF = 10;
const encoder = new TextEncoder();
const CR = 13;

/** Splits an entity into its header block and body; no blank line means headers only. */
export function readEntity(raw: Uint8Array): MimeEntity {
  let lineStart = 0;
  while (lineStart < raw.length) {
    const lf = raw.indexOf(LF, lineStart);
    const lineEnd = lf < 0 ? raw.length : lf;
    const contentEnd = lineEnd > lineStart && raw[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    if (contentEnd === lineStart) {
      // The blank line separating headers from body.
      const bodyStart = lf < 0 ? raw.length : lf + 1;
      return { raw, headers: parseHeaderBlock(raw.subarray(0, lineStart)), body: raw.subarray(bodyStart) };
    }
    if (lf < 0) break;
    lineStart = lf + 1;
  }
  return { raw, headers: parseHeaderBlock(raw), body: raw.subarray(raw.length) };
}

/** Header bytes to fields: folded lines are unfolded; lines that are not `name: value` are skipped. */
export function parseHeaderBlock(bytes: Uint8Array): HeaderField[] {
  const text = decodeHeaderBytes(bytes);
  const fields: HeaderField[] = [];
  let current: string | null = null;
  const flush = () => {
    if (current === null) return;
    const colon = current.indexOf(":");
    if (colon > 0) {
      const name = current.slice(0, colon).trim().toLowerCase();
      if (/^[!-9;-~]+$/.test(name)) fields.push({ name, value: current.slice(colon + 1).trim() });
    }
    current = null;
  };
  for (const line of text.split(/\r?\n/)) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && current !== null) {
      current += line;
    } else {
      flush();
      current = line;
    }
  }
  flush();
  return fields;
}

/** UTF-8 when the bytes are UTF-8 (RFC 6532), else one char per byte so nothing is lost. */
function decodeHeaderBytes(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return latin1(bytes);
  }
}

export function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** The first occurrence of a header wins. */
export function headerValue(headers: HeaderField[], name: string): string | null {
  for (const field of headers) if (field.name === name) return field.value;
  return null;
}

/** Parses `value; a=b; c="d"` with RFC 2231 continuations (`name*0*=`) and charsets (`name*=utf-8''…`). */
export function parseStructuredHeader(header: string): ParsedHeaderValue {
  const segments = splitUnquoted(header, ";");
  const value = (segments.shift() ?? "").trim().toLowerCase();
  // Null prototypes: parameter names come from the mail.
  const simple: Record<string, string> = Object.create(null);
  const continued = new Map<string, { index: number; encoded: boolean; value: string }[]>();
  for (const segment of segments) {
    const eq = segment.indexOf("=");
    if (eq <= 0) continue;
    const rawName = segment.slice(0, eq).trim().toLowerCase();
    const paramValue = unquote(segment.slice(eq + 1).trim());
    const m = /^([^*]+)\*(?:(\d+)(\*)?)?$/.exec(rawName);
    if (!m) {
      if (rawName && !(rawName in simple)) simple[rawName] = paramValue;
      continue;
    }
    const base = m[1] as string;
    const index = m[2] === undefined ? 0 : Number(m[2]);
    const encoded = m[2] === undefined ? true : m[3] === "*";
    const list = continued.get(base) ?? [];
    list.push({ index, encoded, value: paramValue });
    continued.set(base, list);
  }
  const params: Record<string, string> = Object.assign(Object.create(null), simple);
  for (const [base, list] of continued) {
    list.sort((a, b) => a.index - b.index);
    let charset = "utf-8";
    const bytes: number[] = [];
    list.forEach((piece, i) => {
      let text = piece.value;
      if (piece.encoded && i === 0) {
        const parts = /^([^']*)'[^']*'(.*)$/s.exec(text);
        if (parts) {
          charset = parts[1] || charset;
          text = parts[2] as string;
        }
      }
      // Percent escapes are bytes; everything else is taken as its UTF-8 bytes.
      const pieces = piece.encoded ? text.split(/(%[0-9a-fA-F]{2})/) : [text];
      for (const chunk of pieces) {
        if (piece.encoded && /^%[0-9a-fA-F]{2}$/.test(chunk)) bytes.push(Number.parseInt(chunk.slice(1), 16));
        else for (const b of encoder.encode(chunk)) bytes.push(b);
      }
    });
    // The RFC 2231 form wins over a plain parameter of the same name.
    params[base] = decodeText(new Uint8Array(bytes), charset).value;
  }
  return { value, params };
}

function splitUnquoted(text: string, separator: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted && ch === "\\" && i + 1 < text.length) {
      current += ch + text[i + 1];
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === separator && !quoted) {
      out.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  out.push(current);
  return out;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return value;
}

export interface ContentInfo {
  /** Lower-cased `type/subtype`; `text/plain` when absent or malformed. */
  mimeType: string;
  params: Record<string, string>;
  /** `attachment`, `inline`, another token, or null. */
  disposition: string | null;
  /** From the disposition `filename` or the content-type `name`, RFC 2047/2231 decoded. */
  filename: string | null;
  /** Lower-cased Content-Transfer-Encoding, `7bit` when absent. */
  transferEncoding: string;
}

export function contentInfo(entity: MimeEntity): ContentInfo {
  const ct = parseStructuredHeader(headerValue(entity.headers, "content-type") ?? "text/plain");
  const mimeType = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(ct.value) ? ct.value : "text/plain";
  const cdHeader = headerValue(entity.headers, "content-disposition");
  const cd = cdHeader === null ? null : parseStructuredHeader(cdHeader);
  const rawName = cd?.params.filename ?? ct.params.name ?? null;
  const filename = rawName === null ? null : safeDecodeWords(rawName).trim() || null;
  const cte = (headerValue(entity.headers, "content-transfer-encoding") ?? "7bit").trim().toLowerCase();
  return { mimeType, params: ct.params, disposition: cd?.value || null, filename, transferEncoding: cte };
}

/** RFC 2047 decoding through postal-mime; undecodable input stays as it is. */
export function safeDecodeWords(text: string): string {
  try {
    return decodeWords(text);
  } catch {
    return text;
  }
}

/**
 * The body parts of a multipart body, as entities (RFC 2046 delimiters: a line `--boundary` or the
 * closing `--boundary--`, optional trailing whitespace; the line break before a delimiter belongs to
 * it). A missing closing delimiter (truncated mail) ends the last part at the end of the body.
 */
export function splitMultipart(body: Uint8Array, boundary: string): MimeEntity[] {
  const delimiter = encoder.encode(`--${boundary}`);
  const parts: MimeEntity[] = [];
  let partStart = -1;
  let lineStart = 0;
  while (lineStart <= body.length) {
    const lf = body.indexOf(LF, lineStart);
    const lineEnd = lf < 0 ? body.length : lf;
    const kind = delimiterKind(body, lineStart, lineEnd, delimiter);
    if (kind !== null) {
      if (partStart >= 0) {
        let end = lineStart;
        if (end > partStart && body[end - 1] === LF) end--;
        if (end > partStart && body[end - 1] === CR) end--;
        pushPart(parts, body.subarray(partStart, Math.max(partStart, end)));
      }
      if (kind === "close") return parts;
      partStart = lf < 0 ? body.length : lf + 1;
    }
    if (lf < 0) break;
    lineStart = lf + 1;
  }
  if (partStart >= 0) pushPart(parts, body.subarray(partStart));
  return parts;
}

function pushPart(parts: MimeEntity[], bytes: Uint8Array) {
  if (parts.length >= MAX_MIME_PARTS) throw new MailParseError("Too many MIME parts");
  parts.push(readEntity(bytes));
}

function delimiterKind(body: Uint8Array, start: number, end: number, delimiter: Uint8Array): "open" | "close" | null {
  if (end - start < delimiter.length) return null;
  for (let i = 0; i < delimiter.length; i++) if (body[start + i] !== delimiter[i]) return null;
  let i = start + delimiter.length;
  let kind: "open" | "close" = "open";
  if (i + 1 < end && body[i] === 45 && body[i + 1] === 45) {
    kind = "close";
    i += 2;
  }
  for (; i < end; i++) {
    const b = body[i];
    if (b !== 32 && b !== 9 && b !== CR) return null;
  }
  return kind;
}

/** The sub-entities of a multipart entity, or null for a leaf (including a multipart without boundary). */
export function childParts(entity: MimeEntity, info: ContentInfo = contentInfo(entity)): MimeEntity[] | null {
  if (!info.mimeType.startsWith("multipart/")) return null;
  const boundary = info.params.boundary;
  if (!boundary) return null;
  return splitMultipart(entity.body, boundary);
}

/** The body with its Content-Transfer-Encoding undone (base64, quoted-printable; others as is). */
export function decodeBody(body: Uint8Array, transferEncoding: string): Uint8Array {
  if (transferEncoding === "base64") return decodeBase64(body);
  if (transferEncoding === "quoted-printable") return decodeQuotedPrintable(body);
  return body;
}

const BASE64_VALUES = (() => {
  const table = new Int16Array(256).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  // base64url letters too, some senders use them
  table[45] = 62;
  table[95] = 63;
  return table;
})();

/** Lenient base64: skips anything outside the alphabet, stops at padding, drops a dangling sextet. */
export function decodeBase64(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.floor((input.length * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let bits = 0;
  for (const byte of input) {
    if (byte === 61) break;
    const v = BASE64_VALUES[byte] as number;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.slice(0, n);
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 65 && b <= 70) return b - 55;
  if (b >= 97 && b <= 102) return b - 87;
  return -1;
}

/** Quoted-printable (RFC 2045 §6.7): `=XX` escapes and `=` soft line breaks; malformed `=` kept as is. */
export function decodeQuotedPrintable(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    if (b !== 61) {
      out[n++] = b;
      continue;
    }
    const hi = hexValue(input[i + 1]);
    const lo = hexValue(input[i + 2]);
    if (hi >= 0 && lo >= 0) {
      out[n++] = (hi << 4) | lo;
      i += 2;
      continue;
    }
    // Soft line break: "=" then optional whitespace then the line break.
    let j = i + 1;
    while (input[j] === 32 || input[j] === 9) j++;
    if (input[j] === CR && input[j + 1] === LF) {
      i = j + 1;
    } else if (input[j] === LF) {
      i = j;
    } else if (j >= input.length) {
      i = j;
    } else {
      out[n++] = b;
    }
  }
  return out.slice(0, n);
}

/** Text in its declared charset; an unknown charset or invalid bytes decode as UTF-8 and are flagged. */
export function decodeText(
  bytes: Uint8Array,
  charset: string | undefined,
): { value: string; isEncodingProblem: boolean } {
  const label = (charset ?? "utf-8").trim().toLowerCase() || "utf-8";
  // us-ascii is a subset of UTF-8; WHATWG would map it to windows-1252 instead.
  const effective = label === "us-ascii" || label === "ascii" ? "utf-8" : label;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(effective, { fatal: true, ignoreBOM: false });
  } catch {
    return { value: new TextDecoder("utf-8").decode(bytes), isEncodingProblem: true };
  }
  try {
    return { value: decoder.decode(bytes), isEncodingProblem: false };
  } catch {
    return { value: new TextDecoder(effective).decode(bytes), isEncodingProblem: true };
  }
}
