import { hexToBytes } from "../../lib/hex";
import { GitFormatError } from "./errors";

/** Object ids are 40 lowercase hex characters (SHA-1) in the API, 20 raw bytes in trees, packs and indexes. */
export const OID_BYTES = 20;
const OID_HEX = /^[0-9a-f]{40}$/;

export function isOid(value: string): boolean {
  return OID_HEX.test(value);
}

/** The id git uses for "no object": the old value of a created ref, the new value of a deleted one. */
export const ZERO_OID = "0".repeat(40);

export function oidToBytes(oid: string): Uint8Array {
  if (!isOid(oid)) throw new GitFormatError(`invalid object id ${JSON.stringify(oid)}`);
  return hexToBytes(oid);
}
