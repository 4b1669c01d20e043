// Test-only helpers shared by the pack tests and bench/git.
import { repoIdxBase64, repoPackBase64, thinPackBase64 } from "../../../test/fixtures/git/fixtures";
import { base64ToBytes } from "../../lib/base64";
import { OFS_DELTA } from "../objects/object";
import { createDelta } from "./delta";
import { deflate, encodeEntryHeader, encodeOfsDistance } from "./entry";
import { type PackWriterInput, writePack } from "./writer";

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

/** A generated pack and the contents of every object in it (each a blob). */
export type GeneratedPack = { pack: Uint8Array; contents: Uint8Array[] };

const encoder = new TextEncoder();

async function packOf(inputs: PackWriterInput[], contents: Uint8Array[]): Promise<GeneratedPack> {
  return { pack: await streamBytes(writePack(inputs.length, inputs)), contents };
}

/** About 8 MiB of blobs: 64 incompressible, 64 of compressible text, 2,000 small ones. */
export function mixedBlobPack(): Promise<GeneratedPack> {
  const contents: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) contents.push(crypto.getRandomValues(new Uint8Array(65536)));
  const text = encoder.encode("const line = 'some source code that compresses reasonably';\n".repeat(1000));
  for (let i = 0; i < 64; i++) contents.push(Uint8Array.from([...text, i]));
  for (let i = 0; i < 2000; i++) contents.push(encoder.encode(`small file ${i}\n`));
  return packOf(
    contents.map((body) => ({ type: "blob", body })),
    contents,
  );
}

/** `count` small blobs of one line each. */
export function smallBlobPack(count = 10_000): Promise<GeneratedPack> {
  const contents = Array.from({ length: count }, (_, i) => encoder.encode(`small file number ${i} with a line\n`));
  return packOf(
    contents.map((body) => ({ type: "blob", body })),
    contents,
  );
}

/** `files` text files of 1,500 lines, each followed by `depth` versions stored as ofs-deltas on the previous. */
export function deltaChainPack(files = 20, depth = 10): Promise<GeneratedPack> {
  const lines = Array.from({ length: 1500 }, (_, i) => `line ${i}: ${"lorem ipsum dolor sit amet ".repeat(2)}\n`);
  const inputs: PackWriterInput[] = [];
  const contents: Uint8Array[] = [];
  for (let file = 0; file < files; file++) {
    let previous = encoder.encode(`file ${file}\n${lines.join("")}`);
    inputs.push({ type: "blob", body: previous });
    contents.push(previous);
    for (let version = 1; version <= depth; version++) {
      lines[(file * 97 + version * 131) % lines.length] = `edited ${file}/${version}\n`;
      const next = encoder.encode(`file ${file}\n${lines.join("")}`);
      const delta = createDelta(previous, next);
      const header = encodeEntryHeader(OFS_DELTA, delta.length);
      const raw = Uint8Array.from([...header, ...encodeOfsDistance(1), ...deflate(delta)]);
      inputs.push({ raw, baseIndex: inputs.length - 1 });
      contents.push(next);
      previous = next;
    }
  }
  return packOf(inputs, contents);
}
