import { GitFormatError } from "./errors";

/** Object ids are 40 lowercase hex characters (SHA-1) in the API, 20 raw bytes in trees, packs and indexes. */
export const OID_BYTES = 20;
const OID_HEX = /^[0-9a-f]{40}$/;

export function isOid(value: string): boolean {
  return OID_HEX.test(value);
}

const hexDigits = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += hexDigits[byte];
  return out;
}

export function oidToBytes(oid: string): Uint8Array {
  if (!isOid(oid)) throw new GitFormatError(`invalid object id ${JSON.stringify(oid)}`);
  const out = new Uint8Array(OID_BYTES);
  for (let i = 0; i < OID_BYTES; i++) out[i] = Number.parseInt(oid.slice(i * 2, i * 2 + 2), 16);
  return out;
}
