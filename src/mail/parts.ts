/**
 * Blob ids and part extraction for `GET …/instances/blobs/:blobId`: the part named by an IMAP-style path,
 * decoded, with its own content type and file name. Paths match parse.ts: children of a multipart are
 * numbered from 1 (`1.2` is the second child of the first), and path "1" of a single-part message is
 * the message body itself.
 */
import {
  childParts,
  contentInfo,
  decodeBody,
  MAX_MIME_DEPTH,
  MailParseError,
  MailPartNotFound,
  readEntity,
} from "./mime";

export interface MailPart {
  /** `type/subtype`, plus `; charset=…` for text parts that declare one. */
  contentType: string;
  filename: string | null;
  /** The decoded body (base64 and quoted-printable undone). */
  body: Uint8Array;
}

const PART_PATH = /^\d+(?:\.\d+)*$/;

export function blobIdFor(mailId: string, partPath: string): string {
  return `blob_${mailId}_${partPath}`;
}

/** `blob_<mailId>_<partPath>` → its pieces, or null. The lazy match lets mail ids contain `_`. */
export function parseBlobId(blobId: string): { mailId: string; partPath: string } | null {
  const m = /^blob_(.+?)_(\d+(?:\.\d+)*)$/.exec(blobId);
  if (!m) return null;
  return { mailId: m[1] as string, partPath: m[2] as string };
}

/** Throws `MailPartNotFound` when the path names no part, `MailParseError` past the structural limits. */
export function extractPart(raw: Uint8Array, partPath: string): MailPart {
  if (!PART_PATH.test(partPath)) throw new MailPartNotFound(`Invalid part path: ${partPath}`);
  const indexes = partPath.split(".").map(Number);
  if (indexes.length > MAX_MIME_DEPTH) throw new MailPartNotFound(`No part ${partPath}`);
  try {
    let entity = readEntity(raw);
    for (const [level, index] of indexes.entries()) {
      const children = childParts(entity);
      if (children) {
        const child = children[index - 1];
        if (index < 1 || !child) throw new MailPartNotFound(`No part ${partPath}`);
        entity = child;
      } else if (!(level === 0 && indexes.length === 1 && index === 1)) {
        throw new MailPartNotFound(`No part ${partPath}`);
      }
    }
    const info = contentInfo(entity);
    const charset = info.params.charset;
    const contentType =
      info.mimeType.startsWith("text/") && charset && /^[A-Za-z0-9._:-]+$/.test(charset)
        ? `${info.mimeType}; charset=${charset.toLowerCase()}`
        : info.mimeType;
    return { contentType, filename: info.filename, body: decodeBody(entity.body, info.transferEncoding) };
  } catch (err) {
    if (err instanceof MailPartNotFound || err instanceof MailParseError) throw err;
    throw new MailParseError("Unparseable mail", { cause: err });
  }
}

/**
 * A Content-Disposition value for downloading a part (RFC 6266): an ASCII fallback name plus the exact
 * UTF-8 name as `filename*`.
 */
export function attachmentDisposition(filename: string | null): string {
  if (!filename) return "attachment";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters never reach a header
  const clean = filename.replace(/[\x00-\x1f\x7f]/g, "").replace(/[/\\]/g, "_");
  const fallback = clean.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
