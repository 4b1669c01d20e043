// Test-only helpers shared by the pack tests (not exported from index.ts).
import { repoIdxBase64, repoPackBase64, thinPackBase64 } from "../../../test/fixtures/git/fixtures";

export function fromBase64(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** The real git fixtures (see test/fixtures/git/generate.sh). */
export const fixtures = {
  repoPack: () => fromBase64(repoPackBase64),
  repoIdx: () => fromBase64(repoIdxBase64),
  thinPack: () => fromBase64(thinPackBase64),
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
