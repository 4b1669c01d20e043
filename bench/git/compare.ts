/**
 * The hub's git smart HTTP against git's own `git http-backend`, in the same run, with the real `git`
 * client on loopback:
 *   1. generates a source repository (fast-import: >= 2,000 commits, >= 20 MB packed; see generate.ts);
 *   2. starts the hub (fresh local state) and http-backend behind a small CGI host. The hub runs in workerd
 *      through Miniflare, as the SSE benchmark does: `wrangler dev` adds a development proxy (a second
 *      workerd relaying every byte) that no deployment has; BENCH_RUNTIME=wrangler measures with it;
 *   3. per repetition and server, on a fresh target repository: full push of the history, clone,
 *      incremental push of 20 commits, incremental fetch in the clone, then 20 more one-commit pushes and
 *      a fresh clone of the result — each timed;
 *   4. repetitions interleave the servers (hub, backend, hub, backend, ...); prints medians, all samples,
 *      hub/backend ratios, the peak heap of the hub Worker's isolate per operation (read through the
 *      inspector) and the workerd process's peak RSS;
 *   5. a large generated repository (BENCH_GIT_LARGE_MB, 300 MB of incompressible files): push and clone
 *      on both servers, interleaved, with the isolate's peak heap.
 *
 * Run: npm run bench:git   (loopback only; everything lives in temp dirs removed at the end)
 * Knobs: BENCH_GIT_REPS (3), BENCH_GIT_COMMITS (2000), BENCH_GIT_LARGE_MB (300; 0 skips it),
 *        BENCH_RUNTIME (workerd; or wrangler).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyMigrations, freePort, noRateLimits, startHub, startHubInWorkerd } from "../../scripts/hub.mjs";
import { connectIsolateHeap, type IsolateHeap } from "../support/isolate-heap";
import { benchHistory, generateRepository } from "./generate";
import { type HttpBackendServer, startHttpBackendServer } from "./http-backend-server";
import { backendRepository, gitRunner, hubAccount, hubRepository, mb, median, ms, pad, type Side } from "./support";

const REPS = Number(process.env.BENCH_GIT_REPS ?? 3);
const COMMITS = Number(process.env.BENCH_GIT_COMMITS ?? 2000);
const NEXT_COMMITS = 20;
const LATER_PUSHES = 20;
const LARGE_MB = Number(process.env.BENCH_GIT_LARGE_MB ?? 300);
const RUNTIME = process.env.BENCH_RUNTIME === "wrangler" ? "wrangler" : "workerd";
const OP_TIMEOUT_MS = 10 * 60_000;
const OPS = [
  "push (full history)",
  "clone",
  `push (${NEXT_COMMITS} commits)`,
  `fetch (${NEXT_COMMITS} commits)`,
  `clone after ${LATER_PUSHES} pushes`,
] as const;
const LARGE_OPS = ["push (large repo)", "clone (large repo)"] as const;
type Op = (typeof OPS)[number] | (typeof LARGE_OPS)[number];
const ALL_OPS: readonly Op[] = [...OPS, ...LARGE_OPS];

/** Bytes `git pack-objects` writes for these rev-list arguments (what a push of them sends). */
function packBytes(gitDir: string, revs: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["pack-objects", "--revs", "--stdout", "-q"], {
      cwd: gitDir,
      env: gitEnv(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let bytes = 0;
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(bytes) : reject(new Error(`pack-objects: ${stderr}`))));
    child.stdin.end(`${revs.join("\n")}\n`);
  });
}

// --- process bookkeeping (workerd RSS, cleanup) -------------------------------------------------------

type Proc = { pid: number; ppid: number; comm: string; start: string };
function readProc(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    return { pid, ppid: Number(fields[1]), comm, start: fields[19] ?? "" };
  } catch {
    return null;
  }
}
function descendants(root: number): Proc[] {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is Proc => p !== null);
  const out: Proc[] = [];
  const parents = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}
function statusKb(pid: number, field: "VmHWM" | "VmRSS"): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) : Number.NaN;
}
/** Resets the peak RSS (VmHWM) to the current RSS; returns false where the kernel does not allow it. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * git's probe for a large push: when the request does not fit in http.postBuffer (1 MiB by default), git
 * first POSTs a bare flush ("0000") to git-receive-pack and streams the real request only after a 200.
 * git http-backend answers it with an empty 200. Returns the HTTP status the server gives it.
 */
async function probeReceivePack(repoUrl: string): Promise<number> {
  const url = new URL(`${repoUrl}/git-receive-pack`);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString(
    "base64",
  );
  url.username = "";
  url.password = "";
  const res = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Basic ${auth}`,
      "content-type": "application/x-git-receive-pack-request",
      accept: "application/x-git-receive-pack-result",
    },
    body: "0000",
  });
  await res.arrayBuffer();
  return res.status;
}

let work = "";
const runner = () => gitRunner(work);
const git = (cwd: string, ...args: string[]) => runner().git(cwd, ...args);
const gitEnv = () => runner().env();
const timedGit = async (cwd: string, args: string[]) => (await runner().timed(cwd, args, {}, OP_TIMEOUT_MS)).ms;

async function main() {
  work = await mkdtemp(join(tmpdir(), "agent-hub-bench-git-"));
  const persistTo = join(work, "hub-state");
  const projectRoot = join(work, "backend-root");
  const clones = join(work, "clones");
  await Promise.all([mkdir(persistTo), mkdir(projectRoot), mkdir(clones)]);

  let hub: {
    url: string;
    child: ChildProcess;
    inspectorPort?: number;
    stop(): Promise<void>;
    output(): string;
  } | null = null;
  let heap: IsolateHeap | null = null;
  let backend: HttpBackendServer | null = null;
  let ownProcesses: Proc[] = [];
  const cleanup = async () => {
    // Everything this run started is below this process until wrangler exits; snapshot it first, so an
    // interrupt during migrations or start-up (before `hub` is set) leaves nothing behind either.
    ownProcesses = [...ownProcesses, ...descendants(process.pid)];
    heap?.close();
    await backend?.stop().catch(() => {});
    if (hub) {
      ownProcesses = [...ownProcesses, ...descendants(hub.child.pid as number)];
      await hub.stop();
    }
    // wrangler should take workerd with it; kill whatever outlived it (same pid and start time only).
    for (const p of ownProcesses) {
      const now = readProc(p.pid);
      if (now && now.start === p.start) {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {}
      }
    }
    await rm(work, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    // 1. The source repository.
    const source = join(work, "source.git");
    await git(work, "init", "-q", "--bare", "-b", "main", source);
    let t0 = performance.now();
    await generateRepository(source, benchHistory(COMMITS, NEXT_COMMITS), gitEnv());
    const generatedMs = performance.now() - t0;
    t0 = performance.now();
    // fast-import writes blobs without deltas; recompute them as a long-lived repository would have them.
    await git(source, "repack", "-q", "-a", "-d", "-f");
    await git(source, "gc", "-q");
    const gcMs = performance.now() - t0;
    const counts = Object.fromEntries(
      (await git(source, "count-objects", "-v")).split("\n").map((l) => l.split(": ") as [string, string]),
    );
    const mainSha = await git(source, "rev-parse", "main");
    const nextSha = await git(source, "rev-parse", "next");
    const commitCount = Number(await git(source, "rev-list", "--count", "main"));
    const files = (await git(source, "ls-tree", "-r", "--name-only", "main")).split("\n").length;
    const fullPack = await packBytes(source, ["main"]);
    const nextPack = await packBytes(source, ["next", "^main"]);
    console.log(
      `source: ${commitCount} commits on main (+${NEXT_COMMITS} on next), ${files} files, ` +
        `size-pack ${mb(Number(counts["size-pack"]) * 1024)} after gc (${counts.count} loose, ${counts["in-pack"]} packed objects); ` +
        `generated in ${ms(generatedMs)}, repack+gc ${ms(gcMs)}`,
    );

    // 2. Servers.
    if (RUNTIME === "wrangler") {
      await applyMigrations({ persistTo, quiet: true });
      hub = await startHub({ port: await freePort(), persistTo, quiet: true, vars: noRateLimits });
    } else {
      hub = await startHubInWorkerd({ port: await freePort(), persistTo, inspectorPort: await freePort() });
    }
    console.log(`hub: ${RUNTIME === "wrangler" ? "wrangler dev (its proxy + workerd)" : "workerd via Miniflare"}`);
    backend = await startHttpBackendServer({ projectRoot });
    heap = await connectIsolateHeap(hub.inspectorPort as number);
    const heapAtStart = await heap.read();
    ownProcesses = descendants(hub.child.pid as number);
    // wrangler dev runs two workerd processes: a proxy on the hub's port and the runtime that runs the
    // Worker (restarted when wrangler reloads it after a source change); Miniflare runs one. The user
    // Worker's one holds pushed packs, so each operation reads the peak of every workerd under the hub and
    // keeps the largest; a changed pid set means a reload happened during the run, which the report flags.
    const workerdPids = () =>
      descendants(hub?.child.pid as number)
        .filter((p) => p.comm.startsWith("workerd"))
        .map((p) => p.pid)
        .sort((a, b) => a - b);
    const startPids = workerdPids();
    const canResetPeak = startPids.length > 0 && startPids.every(resetPeak);
    const workerdStartKb = Math.max(...startPids.map((pid) => statusKb(pid, "VmRSS")));
    const rssOfWorkerds = (field: "VmRSS" | "VmHWM", pids: number[]) => {
      let kb = 0;
      for (const pid of pids) {
        try {
          kb = Math.max(kb, statusKb(pid, field));
        } catch {} // exited meanwhile
      }
      return kb;
    };
    let lastPids = startPids.join(",");
    const reloads: string[] = [];

    const hubUrl = hub.url;
    const account = await hubAccount(hubUrl);
    const newTarget = async (side: Side, rep: number): Promise<string> => {
      const name = `bench-${rep}-${Math.random().toString(36).slice(2, 8)}`;
      return side === "backend"
        ? backendRepository(git, projectRoot, backend?.url as string, name)
        : hubRepository(hubUrl, account, name);
    };

    // git's large-push probe against both servers. If the hub refuses it, every push over 1 MiB fails with
    // the default client ("RPC failed; HTTP 400"), so both sides then push with a postBuffer big enough to
    // send the request in one piece (no probe, Content-Length instead of chunked) and the report says so.
    const probe = {
      hub: await probeReceivePack(await newTarget("hub", 0)),
      backend: await probeReceivePack(await newTarget("backend", 0)),
    };
    const probeOk = probe.hub === 200;
    const pushConfig = probeOk ? [] : ["-c", `http.postBuffer=${64 * 1024 * 1024}`];
    console.log(
      `large-push probe (POST "0000" to git-receive-pack): hub ${probe.hub}, backend ${probe.backend}` +
        (probeOk ? "" : ` — the hub refuses it, so both sides push with ${pushConfig.slice(1).join(" ")}`),
    );

    const perOp = <T>() => Object.fromEntries(ALL_OPS.map((o) => [o, []])) as unknown as Record<Op, T[]>;
    const samples: Record<Side, Record<Op, number[]>> = { hub: perOp(), backend: perOp() };
    type Rss = { beforeKb: number; peakKb: number };
    const hubRss = perOp<Rss>();
    type Heap = { usedSize: number; withBuffers: number };
    const hubHeap = perOp<Heap>();
    /** Hub samples taken right after wrangler restarted the Worker (a source change elsewhere). */
    const disturbed = new Set<string>();
    const clonePackKb: Record<Side, number[]> = { hub: [], backend: [] };

    // 3./4. Interleaved repetitions.
    for (let rep = 1; rep <= REPS; rep++) {
      for (const side of ["hub", "backend"] as const) {
        const url = await newTarget(side, rep);
        const clone = join(clones, `${side}-${rep}`);
        const step = async (op: Op, cwd: string, args: string[]) => {
          let beforeKb = 0;
          if (side === "hub") {
            const pids = workerdPids();
            if (canResetPeak) for (const pid of pids) resetPeak(pid);
            beforeKb = rssOfWorkerds("VmRSS", pids);
          }
          let elapsed: number;
          const watching = side === "hub" ? heap?.watch() : undefined;
          try {
            elapsed = await timedGit(cwd, args);
            const peak = await watching?.stop();
            if (peak) hubHeap[op].push(peak);
          } catch (err) {
            await watching?.stop();
            if (side === "hub") {
              const log = hub?.output() ?? "";
              throw new Error(`${(err as Error).message}\n--- hub log (last 8 kB) ---\n${log.slice(-8192)}`);
            }
            throw err;
          }
          samples[side][op].push(elapsed);
          let note = "";
          if (side === "hub") {
            const pids = workerdPids();
            hubRss[op].push({ beforeKb, peakKb: rssOfWorkerds("VmHWM", pids) });
            if (pids.join(",") !== lastPids) {
              disturbed.add(`${op}#${samples.hub[op].length - 1}`);
              reloads.push(`rep ${rep} ${op}`);
              note = "  (* wrangler restarted the Worker before or during this operation)";
              lastPids = pids.join(",");
            }
          }
          process.stdout.write(`  rep ${rep} ${pad(side, 7)} ${pad(op, 22)} ${ms(elapsed)}${note}\n`);
        };
        await step("push (full history)", source, [...pushConfig, "push", "-q", "--force", url, "main:main"]);
        await step("clone", clones, ["clone", "-q", url, clone]);
        const head = await git(clone, "rev-parse", "HEAD");
        if (head !== mainSha) throw new Error(`${side} clone has HEAD ${head}, expected ${mainSha}`);
        clonePackKb[side].push(Number((await git(clone, "count-objects", "-v")).match(/size-pack: (\d+)/)?.[1]));
        await step(`push (${NEXT_COMMITS} commits)`, source, [...pushConfig, "push", "-q", url, "next:main"]);
        await step(`fetch (${NEXT_COMMITS} commits)`, clone, ["fetch", "-q", "origin"]);
        const fetched = await git(clone, "rev-parse", "origin/main");
        if (fetched !== nextSha) throw new Error(`${side} fetch gave origin/main ${fetched}, expected ${nextSha}`);
        // Small pushes pile up packs; a clone must stay fast all the same.
        await git(clone, "checkout", "-q", "-B", "main", "origin/main");
        for (let i = 0; i < LATER_PUSHES; i++) {
          await writeFile(join(clone, `later-${i}.txt`), `later push ${i}\n`);
          await git(clone, "add", ".");
          await git(clone, "commit", "-q", "-m", `later ${i}`);
          await git(clone, "push", "-q", "origin", "main");
        }
        const laterTip = await git(clone, "rev-parse", "HEAD");
        const again = join(clones, `${side}-${rep}-again`);
        await step(`clone after ${LATER_PUSHES} pushes`, clones, ["clone", "-q", url, again]);
        if ((await git(again, "rev-parse", "HEAD")) !== laterTip)
          throw new Error(`${side} clone after pushes is stale`);
        await rm(clone, { recursive: true, force: true });
        await rm(again, { recursive: true, force: true });
      }
    }

    // 5. A large repository: pushed whole and cloned, on both servers.
    let largeSummary = "";
    if (LARGE_MB > 0) {
      const large = join(work, "large");
      await git(work, "init", "-q", "-b", "main", large);
      const perCommit = 30;
      const commits = Math.ceil(LARGE_MB / perCommit);
      for (let c = 0; c < commits; c++) {
        const files = Math.min(perCommit, LARGE_MB - c * perCommit);
        for (let f = 0; f < files; f++) await writeFile(join(large, `c${c}-f${f}.bin`), randomBytes(1024 * 1024));
        await git(large, "add", ".");
        await git(large, "commit", "-q", "-m", `large ${c}`);
      }
      const largeTip = await git(large, "rev-parse", "HEAD");
      const largePack = await packBytes(join(large, ".git"), ["main"]);
      largeSummary = `large repository: ${LARGE_MB} files of 1 MiB random bytes in ${commits} commits, pack ${mb(largePack)}`;
      console.log(largeSummary);
      for (let rep = 1; rep <= REPS; rep++) {
        for (const side of ["hub", "backend"] as const) {
          const url = await newTarget(side, 100 + rep);
          const watching = side === "hub" ? heap.watch() : undefined;
          const push = await timedGit(large, [...pushConfig, "push", "-q", "--force", url, "main:main"]);
          const pushPeak = await watching?.stop();
          samples[side][LARGE_OPS[0]].push(push);
          if (pushPeak) hubHeap[LARGE_OPS[0]].push(pushPeak);
          const target = join(clones, `${side}-large-${rep}`);
          const watchingClone = side === "hub" ? heap.watch() : undefined;
          const clone = await timedGit(clones, ["clone", "-q", url, target]);
          const clonePeak = await watchingClone?.stop();
          samples[side][LARGE_OPS[1]].push(clone);
          if (clonePeak) hubHeap[LARGE_OPS[1]].push(clonePeak);
          if ((await git(target, "rev-parse", "HEAD")) !== largeTip) throw new Error(`${side} large clone is stale`);
          await rm(target, { recursive: true, force: true });
          process.stdout.write(
            `  rep ${rep} ${pad(side, 7)} ${pad("large push, clone", 22)} ${ms(push)}, ${ms(clone)}\n`,
          );
        }
      }
    }

    // Report.
    const gitVersion = await git(work, "--version");
    console.log(
      `\n${gitVersion} client on both sides, loopback, ${REPS} repetitions interleaved (hub, backend, ...), fresh target each.`,
    );
    console.log("Protocol: the client's default (v2 for fetch/clone where the server offers it; push is always v0).");
    console.log(
      probeOk
        ? "Pushes: default client settings (requests over 1 MiB are probed, then streamed chunked).\n"
        : `Pushes: ${pushConfig.slice(1).join(" ")} on both sides, because the hub answers git's large-push probe with ${probe.hub}.\n`,
    );
    const header = `${pad("operation", 24)} ${pad("hub median", 11)} ${pad("backend med.", 12)} ${pad("hub/backend", 11)} ${pad("hub samples", 28)} backend samples`;
    console.log(header);
    console.log("-".repeat(header.length + 10));
    const shown = LARGE_MB > 0 ? ALL_OPS : OPS;
    for (const op of shown) {
      const h = median(samples.hub[op]);
      const b = median(samples.backend[op]);
      console.log(
        `${pad(op, 24)} ${pad(ms(h), 11)} ${pad(ms(b), 12)} ${pad(`${(h / b).toFixed(2)}x`, 11)} ${pad(samples.hub[op].map((x, i) => `${ms(x)}${disturbed.has(`${op}#${i}`) ? "*" : ""}`).join(", "), 28)} ${samples.backend[op].map(ms).join(", ")}`,
      );
    }
    const ratio = (op: Op) => median(samples.hub[op]) / median(samples.backend[op]);
    const target = (what: string, op: Op, limit: number) =>
      console.log(
        `target: ${what} within ${limit}x of git http-backend: ${ratio(op) <= limit ? "MET" : "NOT MET"} (${ratio(op).toFixed(2)}x)`,
      );
    console.log("");
    target("full-history push", "push (full history)", 1.5);
    target("clone", "clone", 1.0);
    target(`clone after ${LATER_PUSHES} more pushes`, `clone after ${LATER_PUSHES} pushes`, 1.2);
    console.log(
      `clone pack on disk (size-pack): hub ${clonePackKb.hub.map((k) => mb(k * 1024)).join(", ")}; ` +
        `backend ${clonePackKb.backend.map((k) => mb(k * 1024)).join(", ")}`,
    );
    console.log(
      `\nhub Worker isolate heap (Runtime.getHeapUsage through the inspector, sampled every 20 ms; "+buffers" adds ` +
        `ArrayBuffer backing stores): ${mb(heapAtStart.usedSize)} used at start. Peak per operation:`,
    );
    for (const op of shown) {
      const peaks = hubHeap[op];
      console.log(
        `  ${pad(op, 24)} ${peaks.map((p) => `${mb(p.usedSize)} (+buffers ${mb(p.withBuffers)})`).join(",  ")}`,
      );
    }
    if (LARGE_MB > 0) {
      const peak = Math.max(...LARGE_OPS.flatMap((op) => hubHeap[op].map((p) => p.usedSize)));
      console.log(
        `target: ${LARGE_MB} MB repository pushed and cloned with the isolate's peak heap under 128 MB: ` +
          `${peak < 128 * 1024 * 1024 ? "MET" : "NOT MET"} (${mb(peak)}); ${largeSummary}`,
      );
    }
    console.log(`The full-history push sends ${mb(fullPack)}; the ${NEXT_COMMITS}-commit push ${mb(nextPack)}.`);
    if (startPids.length) {
      const all = OPS.flatMap((o) => hubRss[o].map((r) => r.peakKb));
      console.log("");
      console.log(
        `workerd peak RSS (VmHWM, largest of the hub's workerd processes${canResetPeak ? ", peak reset before each operation" : ", not resettable: peak since start"}): ` +
          `${mb(workerdStartKb * 1024)} at start, ${mb(Math.max(...all) * 1024)} overall max. Per operation, RSS before → peak:`,
      );
      for (const op of OPS)
        console.log(
          `  ${pad(op, 24)} ${hubRss[op].map((r) => `${mb(r.beforeKb * 1024)} → ${mb(r.peakKb * 1024)}`).join(",  ")}`,
        );
      if (reloads.length)
        console.log(
          `WARNING: wrangler restarted the Worker during the run (a source file it watches changed) at: ${reloads.join("; ")}. ` +
            "Samples marked * include the restart.",
        );
    } else {
      console.log("workerd peak RSS: no workerd process found under the hub");
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
