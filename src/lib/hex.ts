/** Lowercase hex for bytes, and back: the one pair of helpers for ids, keys and object ids. */

/** The two hex digits' char codes of each byte value, high digit first. */
const hexCodes = new Uint16Array(512);
for (let i = 0; i < 256; i++) {
  hexCodes[2 * i] = "0123456789abcdef".charCodeAt(i >> 4);
  hexCodes[2 * i + 1] = "0123456789abcdef".charCodeAt(i & 15);
}

/** Bytes converted per `fromCharCode` call, well under the engine's limit on arguments. */
const HEX_RUN = 4096;

/**
 * Built from char codes in one call per run, not by appending two digits at a time: appending leaves a
 * chain of pieces that every later use (a Set or Map key) must flatten first, and pushes convert ids by
 * the hundred thousand.
 */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (let start = 0; start < bytes.length; start += HEX_RUN) {
    const end = Math.min(start + HEX_RUN, bytes.length);
    const codes: number[] = new Array(2 * (end - start));
    for (let i = start, j = 0; i < end; i++, j += 2) {
      const byte = bytes[i] as number;
      codes[j] = hexCodes[2 * byte] as number;
      codes[j + 1] = hexCodes[2 * byte + 1] as number;
    }
    out += String.fromCharCode.apply(null, codes);
  }
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
