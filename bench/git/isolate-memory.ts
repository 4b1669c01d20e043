/**
 * What the hub's isolate keeps alive across requests as it serves more and more repositories: a long-lived
 * Worker must stay far below its 128 MB however many repositories pass through it. Each round pushes the
 * same generated history (2,000 commits, 27.8 MB pack) into a new repository of the hub and clones it back;
 * after each round the isolate's heap is read through the inspector after a full garbage collection, as
 * live JavaScript objects and live ArrayBuffer bytes (packs, indexes and blocks live in ArrayBuffers).
 *
 * The caches kept across requests are bounded by bytes (indexes 24 MiB counted with their offsets, pack
 * blocks 16 MiB), so the live bytes should stop growing once they are full, about 30 rounds in.
 *
 * Run: npm run bench:git:memory   (BENCH_GIT_ROUNDS, default 50; BENCH_GIT_COMMITS, default 2000)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startHubInWorkerd } from "../../scripts/hub.mjs";
import { connectIsolateHeap, type HeapUsage, withBuffers } from "../support/isolate-heap";
import { benchHistory, generateRepository } from "./generate";
import { gitEnvIn, gitRunner, hubAccount, hubRepository, mb, ms } from "./support";

const ROUNDS = Number(process.env.BENCH_GIT_ROUNDS ?? 50);
const COMMITS = Number(process.env.BENCH_GIT_COMMITS ?? 2000);

const work = await mkdtemp(join(tmpdir(), "agent-hub-bench-memory-"));
const { git, timed } = gitRunner(work);
let hub: Awaited<ReturnType<typeof startHubInWorkerd>> | null = null;
try {
  const source = join(work, "source.git");
  await git(work, "init", "-q", "--bare", "-b", "main", source);
  await generateRepository(source, benchHistory(COMMITS, 0), gitEnvIn(work));
  await git(source, "repack", "-q", "-a", "-d", "-f");
  const objects = (await git(source, "count-objects", "-v")).match(/in-pack: (\d+)/)?.[1];

  hub = await startHubInWorkerd({
    port: await freePort(),
    persistTo: join(work, "hub-state"),
    inspectorPort: await freePort(),
  });
  const heap = await connectIsolateHeap(hub.inspectorPort as number);
  const account = await hubAccount(hub.url);
  const row = (label: string, usage: HeapUsage, took = "") => {
    const buffers = usage.backingStorageSize ?? 0;
    console.log(
      `${label.padEnd(8)} ${mb(usage.usedSize).padStart(9)} ${mb(buffers).padStart(9)} ${mb(withBuffers(usage)).padStart(9)} ${took.padStart(8)}`,
    );
  };
  console.log(`${COMMITS} commits, ${objects} objects per repository; heap after a full GC, per round:`);
  console.log(
    `${"round".padEnd(8)} ${"JS heap".padStart(9)} ${"buffers".padStart(9)} ${"total".padStart(9)} ${"took".padStart(8)}`,
  );
  const start = await heap.live();
  row("start", start);
  const totals = [withBuffers(start)];
  for (let round = 1; round <= ROUNDS; round++) {
    const t0 = performance.now();
    const url = await hubRepository(hub.url, account, `memory-${round}`);
    // The hub gives a new repository an initial commit; the pushed history replaces it.
    await timed(source, ["push", "-q", "--force", url, "main"]);
    const clone = join(work, `clone-${round}`);
    await timed(work, ["clone", "-q", "--bare", url, clone]);
    await rm(clone, { recursive: true, force: true });
    const took = ms(performance.now() - t0);
    const usage = await heap.live();
    totals.push(withBuffers(usage));
    if (round % 5 === 0 || round === 1 || round === ROUNDS) row(String(round), usage, took);
  }
  heap.close();
  const last = totals.length - 1;
  const tail = Math.min(10, last);
  console.log(
    `\nlive after ${ROUNDS} repositories: ${mb(totals[last] as number)} (start ${mb(totals[0] as number)}, ` +
      `most ${mb(Math.max(...totals))}); growth over the last ${tail} rounds: ` +
      `${mb((totals[last] as number) - (totals[last - tail] as number))}`,
  );
} finally {
  await hub?.stop();
  await rm(work, { recursive: true, force: true });
}
