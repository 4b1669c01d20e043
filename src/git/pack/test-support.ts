// Test-only helpers shared by the pack tests and bench/git.
import { repoIdxBase64, repoPackBase64, thinPackBase64 } from "../../../test/fixtures/git/fixtures";
import { base64ToBytes } from "../../lib/base64";

/** The real git fixtures (see test/fixtures/git/generate.sh). */
export const fixtures = {
  repoPack: () => base64ToBytes(repoPackBase64),
  repoIdx: () => base64ToBytes(repoIdxBase64),
  thinPack: () => base64ToBytes(thinPackBase64),
};

export async function streamBytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A RangeReader over bytes in memory that counts its calls, standing in for R2 range reads. */
export function memoryReader(bytes: Uint8Array) {
  const reader = async (offset: number, length: number) => {
    reader.calls++;
    return bytes.slice(offset, offset + length);
  };
  reader.calls = 0;
  return reader;
}
