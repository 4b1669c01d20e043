/**
 * SSH signatures (OpenSSH PROTOCOL.sshsig) with Ed25519, the format `git` checks for commits signed with
 * `gpg.format=ssh`: `git verify-commit` hands the armored block and the commit without its `gpgsig` header
 * to `ssh-keygen -Y verify`, namespace "git".
 */
import { base64ToBytes, bytesToBase64 } from "../../lib/base64";
import { concatBytes } from "../../lib/bytes";
import type { HubSigningKey } from "../../secrets/hub-signing-key";

const MAGIC = new TextEncoder().encode("SSHSIG");
const KEY_TYPE = "ssh-ed25519";
const HASH = "sha512";
const BEGIN = "-----BEGIN SSH SIGNATURE-----";
const END = "-----END SSH SIGNATURE-----";

export class SshSignatureError extends Error {}

/** SSH wire encoding: each field a big-endian uint32 length and its bytes (RFC 4251 `string`). */
function wire(...fields: (Uint8Array | string)[]): Uint8Array {
  const parts = fields.map((f) => (typeof f === "string" ? new TextEncoder().encode(f) : f));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** The public key as one line of an `authorized_keys` or `allowed_signers` file. */
export function sshPublicKeyLine(publicKey: Uint8Array, comment: string): string {
  return `${KEY_TYPE} ${bytesToBase64(wire(KEY_TYPE, publicKey))} ${comment}`;
}

/** What is signed: the magic, namespace, reserved, hash algorithm and the SHA-512 of the message. */
async function signedData(message: Uint8Array, namespace: string): Promise<Uint8Array> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", message));
  return concatBytes([MAGIC, wire(namespace, "", HASH, digest)]);
}

/** Signs `message` and returns the armored `-----BEGIN SSH SIGNATURE-----` block (no trailing newline). */
export async function sshSign(message: Uint8Array, key: HubSigningKey, namespace = "git"): Promise<string> {
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, await signedData(message, namespace)),
  );
  const version = Uint8Array.of(0, 0, 0, 1);
  const blob = concatBytes([
    MAGIC,
    version,
    wire(wire(KEY_TYPE, key.publicKey), namespace, "", HASH, wire(KEY_TYPE, signature)),
  ]);
  const lines = bytesToBase64(blob).match(/.{1,70}/g) ?? [];
  return [BEGIN, ...lines, END].join("\n");
}

/** Reads the wire strings of `bytes` from `at`. */
function readStrings(bytes: Uint8Array, at: number, count: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) throw new SshSignatureError("truncated SSH signature");
    const length = view.getUint32(at);
    if (at + 4 + length > bytes.length) throw new SshSignatureError("truncated SSH signature");
    out.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

/** Checks an armored SSH signature over `message` with the Ed25519 `publicKey` (raw 32 bytes). */
export async function sshVerify(
  armored: string,
  message: Uint8Array,
  publicKey: Uint8Array,
  namespace = "git",
): Promise<boolean> {
  const body = armored.trim();
  if (!body.startsWith(BEGIN) || !body.endsWith(END)) throw new SshSignatureError("not an SSH signature block");
  const b64 = body.slice(BEGIN.length, body.length - END.length).replace(/\s+/g, "");
  const blob = base64ToBytes(b64);
  if (new TextDecoder().decode(blob.subarray(0, 6)) !== "SSHSIG") throw new SshSignatureError("bad magic");
  const [keyBlob, ns, , hash, sigBlob] = readStrings(blob, 10, 5) as Uint8Array[];
  const [keyType, key] = readStrings(keyBlob as Uint8Array, 0, 2) as Uint8Array[];
  const [sigType, signature] = readStrings(sigBlob as Uint8Array, 0, 2) as Uint8Array[];
  const decode = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
  if (decode(keyType) !== KEY_TYPE || decode(sigType) !== KEY_TYPE) return false;
  if (decode(ns) !== namespace || decode(hash) !== HASH) return false;
  if (bytesToBase64(key as Uint8Array) !== bytesToBase64(publicKey)) return false;
  const verifier = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify(
    { name: "Ed25519" },
    verifier,
    signature as Uint8Array,
    await signedData(message, namespace),
  );
}
