/**
 * Checks the OpenPGP/MIME signature (RFC 3156) of a message built by buildUserMessage, or any
 * `multipart/signed; protocol="application/pgp-signature"` message: the detached signature in part 2
 * must cover part 1's exact bytes (header lines included), canonicalised to CRLF.
 */
import type { PublicKey } from "openpgp";
import { loadPublicKey, verifyDetached } from "./keys";
import { childParts, contentInfo, decodeBody, decodeText, MailParseError, readEntity } from "./mime";

export interface SignatureCheck {
  valid: boolean;
  reason?: string;
}

/** Never throws for bad mail (it is reported as invalid); throws `MailKeyError` for an unreadable key. */
export async function verifySignedMessage(raw: Uint8Array, publicKey: string | PublicKey): Promise<SignatureCheck> {
  const key = typeof publicKey === "string" ? await loadPublicKey(publicKey) : publicKey;
  let signed: Uint8Array;
  let signature: string;
  try {
    const root = readEntity(raw);
    const info = contentInfo(root);
    if (info.mimeType !== "multipart/signed" || info.params.protocol?.toLowerCase() !== "application/pgp-signature") {
      return { valid: false, reason: "not an OpenPGP/MIME signed message" };
    }
    const parts = childParts(root, info) ?? [];
    const content = parts[0];
    const sigPart = parts[1];
    if (!content || !sigPart) return { valid: false, reason: "signed message without two parts" };
    const sigInfo = contentInfo(sigPart);
    if (sigInfo.mimeType !== "application/pgp-signature") return { valid: false, reason: "part 2 is not a signature" };
    signed = canonicalLineEndings(content.raw);
    signature = decodeText(decodeBody(sigPart.body, sigInfo.transferEncoding), "utf-8").value;
  } catch (err) {
    if (err instanceof MailParseError) return { valid: false, reason: err.message };
    throw err;
  }
  return verifyDetached(signed, signature, key);
}

/** Bare LF → CRLF (RFC 3156 §5: the signed data is in canonical form), leaving existing CRLF alone. */
function canonicalLineEndings(bytes: Uint8Array): Uint8Array {
  let bare = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10 && bytes[i - 1] !== 13) bare++;
  if (bare === 0) return bytes;
  const out = new Uint8Array(bytes.length + bare);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] !== 13) out[n++] = 13;
    out[n++] = bytes[i] as number;
  }
  return out;
}
