/**
 * Throughput of the pack indexer (`indexPack`: inflate, hash and resolve deltas) on three generated packs:
 * ~8 MiB of mixed blobs, 10,000 small objects, and 20 files in ofs-delta chains of depth 10. Plain Node,
 * no network:
 *
 *   npm run bench:index-pack
 *
 * The packs are built once; the three kinds are then interleaved over five repetitions and the median of
 * each is printed.
 */

import { OFS_DELTA } from "../../src/git/objects/object";
import { createDelta } from "../../src/git/pack/delta";
import { deflate, encodeEntryHeader, encodeOfsDistance } from "../../src/git/pack/entry";
import { indexPack } from "../../src/git/pack/reader";
import { streamBytes } from "../../src/git/pack/test-support";
import { type PackWriterInput, writePack } from "../../src/git/pack/writer";

const REPETITIONS = 5;
const encoder = new TextEncoder();

type Case = { name: string; pack: Uint8Array; objects: number; inflatedBytes: number };

async function mixed(): Promise<Case> {
  const inputs: { type: "blob"; body: Uint8Array }[] = [];
  for (let i = 0; i < 64; i++) inputs.push({ type: "blob", body: crypto.getRandomValues(new Uint8Array(65536)) });
  const text = encoder.encode("const line = 'some source code that compresses reasonably';\n".repeat(1000));
  for (let i = 0; i < 64; i++) inputs.push({ type: "blob", body: Uint8Array.from([...text, i]) });
  for (let i = 0; i < 2000; i++) inputs.push({ type: "blob", body: encoder.encode(`small file ${i}\n`) });
  const pack = await streamBytes(writePack(inputs.length, inputs));
  const inflatedBytes = inputs.reduce((sum, e) => sum + e.body.length, 0);
  return { name: "mixed blobs", pack, objects: inputs.length, inflatedBytes };
}

async function smallObjects(): Promise<Case> {
  const inputs = Array.from({ length: 10_000 }, (_, i) => ({
    type: "blob" as const,
    body: encoder.encode(`small file number ${i} with a line of text\n`),
  }));
  const pack = await streamBytes(writePack(inputs.length, inputs));
  const inflatedBytes = inputs.reduce((sum, e) => sum + e.body.length, 0);
  return { name: "small objects", pack, objects: inputs.length, inflatedBytes };
}

async function deltaChains(): Promise<Case> {
  const lines = Array.from({ length: 1500 }, (_, i) => `line ${i}: ${"lorem ipsum dolor sit amet ".repeat(2)}\n`);
  const inputs: PackWriterInput[] = [];
  let inflatedBytes = 0;
  for (let file = 0; file < 20; file++) {
    let previous = encoder.encode(`file ${file}\n${lines.join("")}`);
    inputs.push({ type: "blob", body: previous });
    inflatedBytes += previous.length;
    for (let version = 1; version <= 10; version++) {
      lines[(file * 97 + version * 131) % lines.length] = `edited ${file}/${version}\n`;
      const next = encoder.encode(`file ${file}\n${lines.join("")}`);
      const delta = createDelta(previous, next);
      const raw = Uint8Array.from([
        ...encodeEntryHeader(OFS_DELTA, delta.length),
        ...encodeOfsDistance(1),
        ...deflate(delta),
      ]);
      inputs.push({ raw, baseIndex: inputs.length - 1 });
      inflatedBytes += next.length;
      previous = next;
    }
  }
  const pack = await streamBytes(writePack(inputs.length, inputs));
  return { name: "delta chains", pack, objects: inputs.length, inflatedBytes };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

const cases = [await mixed(), await smallObjects(), await deltaChains()];
const seconds = new Map<string, number[]>(cases.map((c) => [c.name, []]));
for (let rep = 0; rep < REPETITIONS + 1; rep++) {
  for (const c of cases) {
    const started = performance.now();
    const result = await indexPack(c.pack);
    const elapsed = (performance.now() - started) / 1000;
    if (result.entries.length !== c.objects) throw new Error(`${c.name}: indexed ${result.entries.length} objects`);
    if (rep > 0) seconds.get(c.name)?.push(elapsed); // the first round warms up
  }
}

console.log(`indexPack, median of ${REPETITIONS} interleaved runs (node ${process.version})`);
for (const c of cases) {
  const s = median(seconds.get(c.name) ?? []);
  console.log(
    `  ${c.name.padEnd(14)} ${(c.pack.length / 1e6).toFixed(2).padStart(6)} MB pack, ${String(c.objects).padStart(6)} objects: ` +
      `${(s * 1000).toFixed(0).padStart(5)} ms = ${(c.pack.length / 1e6 / s).toFixed(1)} MB/s packed, ` +
      `${(c.inflatedBytes / 1e6 / s).toFixed(1)} MB/s inflated, ${Math.round(c.objects / s)} objects/s`,
  );
}
