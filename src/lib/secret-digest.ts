/**
 * Bearer secrets the hub issues (git tokens, sidecar secrets): random, shown once, stored only as a
 * SHA-256 digest, and compared in constant time.
 */

import { bytesToBase64Url } from "./base64";

/** `prefix` + base64url of 32 random bytes (256 bits of entropy). */
export function randomSecret(prefix: string): string {
  return prefix + bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** SHA-256 of bytes, or of a secret's UTF-8 bytes exactly as it travels on the wire. */
export async function sha256(data: string | Uint8Array): Promise<Uint8Array> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Constant-time equality of two digests (the length of a digest is not a secret). */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}
