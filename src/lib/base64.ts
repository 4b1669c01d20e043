/** The one base64: standard or URL-safe for bytes, and back (from either alphabet, padded or not). */

export function bytesToBase64(bytes: Uint8Array): string {
  let text = "";
  // In slices: String.fromCharCode with a whole large array overflows the argument stack.
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** base64url without padding (RFC 4648 §5): safe in URLs, cursors and tokens. */
export function bytesToBase64Url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Throws (DOMException) on text that is not base64 or base64url. */
export function base64ToBytes(text: string): Uint8Array {
  const standard = text.replaceAll("-", "+").replaceAll("_", "/");
  const padded = standard + "=".repeat((4 - (standard.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
