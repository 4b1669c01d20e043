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

import { indexPack } from "../../src/git/pack/reader";
import { deltaChainPack, type GeneratedPack, mixedBlobPack, smallBlobPack } from "../../src/git/pack/test-support";

const REPETITIONS = 5;

type Case = { name: string; pack: Uint8Array; objects: number; inflatedBytes: number };

async function generated(name: string, made: Promise<GeneratedPack>): Promise<Case> {
  const { pack, contents } = await made;
  return { name, pack, objects: contents.length, inflatedBytes: contents.reduce((sum, c) => sum + c.length, 0) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

const cases = [
  await generated("mixed blobs", mixedBlobPack()),
  await generated("small objects", smallBlobPack(10_000)),
  await generated("delta chains", deltaChainPack(20, 10)),
];
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
