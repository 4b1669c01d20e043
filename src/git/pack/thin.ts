import { createHash } from "node:crypto";
import { hashObject } from "../objects/object";
import { crc32, encodeObjectEntry } from "./entry";
import { type GitObject, PACK_TRAILER_SIZE, type PackEntryInfo, readPackHeader } from "./reader";

/**
 * Makes a thin pack self-contained, like `git index-pack --fix-thin`: appends the external bases as whole objects,
 * raises the object count in the header and recomputes the trailer. Existing entries keep their offsets (the
 * header has a fixed size), so the entries and CRCs from `indexPack` stay valid; the ref-deltas now find their
 * base inside the pack. Returns the new pack and the appended entries, to merge into the index.
 */
export function completeThinPack(
  pack: Uint8Array,
  externalObjects: readonly GitObject[],
): { pack: Uint8Array; appended: PackEntryInfo[]; packChecksum: string } {
  const { count } = readPackHeader(pack);
  const bodyEnd = pack.length - PACK_TRAILER_SIZE;
  const encoded = externalObjects.map((object) => encodeObjectEntry(object.type, object.body));
  const size = bodyEnd + encoded.reduce((sum, entry) => sum + entry.length, 0) + PACK_TRAILER_SIZE;
  const out = new Uint8Array(size);
  out.set(pack.subarray(0, bodyEnd));
  new DataView(out.buffer).setUint32(8, count + externalObjects.length);
  const appended: PackEntryInfo[] = [];
  let offset = bodyEnd;
  encoded.forEach((entry, i) => {
    const object = externalObjects[i] as GitObject;
    out.set(entry, offset);
    appended.push({
      oid: hashObject(object.type, object.body),
      type: object.type,
      offset,
      crc32: crc32(entry),
      size: object.body.length,
    });
    offset += entry.length;
  });
  const checksum = createHash("sha1").update(out.subarray(0, offset)).digest();
  out.set(checksum, offset);
  return { pack: out, appended, packChecksum: checksum.toString("hex") };
}
