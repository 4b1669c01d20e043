/** Lowercase hex for bytes, and back: the one pair of helpers for ids, keys and object ids. */

const hexDigits = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += hexDigits[byte];
  return out;
}

/** The value of each hex digit's char code (either case); index packs convert hundreds of thousands of ids. */
const digitValues = new Uint8Array(128);
for (let i = 0; i < 16; i++) {
  digitValues[i.toString(16).charCodeAt(0)] = i;
  digitValues[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}

/** Callers check the shape first (even length, hex digits); this only converts. */
export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = ((digitValues[hex.charCodeAt(i * 2)] as number) << 4) | (digitValues[hex.charCodeAt(i * 2 + 1)] as number);
  }
  return out;
}
