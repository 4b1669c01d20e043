/**
 * Incremental fetches on a repository shaped like a real project's — about 3,000 commits with merges, some
 * 440 annotated tags and a few long-lived branches (generate.ts, `generateTaggedRepository`) — against git's
 * own `git http-backend`, in the same run, with the real `git` client on loopback. With many refs, what a
 * fetch costs besides its objects shows: the advertisement, peeled tags, negotiation over many `have`
 * lines, include-tag.
 *
 * Per repetition and server (interleaved: hub, backend, hub, …), on a fresh target repository: push the
 * history with every tag and branch, clone it, then twice push new commits to main (1, then 20 more) and
 * fetch them in the clone. Each step is timed; the objects each fetch received (as git's index-pack counts them)
 * are checked against `git rev-list --objects` on the source. Prints medians, samples and the
 * hub/backend ratio. The hub runs in workerd directly (no `wrangler dev` proxy).
 *
 * Run: npm run bench:git:tags   (loopback only; temp dirs are removed at the end)
 * Knobs: BENCH_GIT_REPS (3), BENCH_GIT_TRACE=1 (the hub's request log of each push, clone and fetch).
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyMigrations, freePort, startHubInWorkerd } from "../../scripts/hub.mjs";
import { generateTaggedRepository } from "./generate";
import { type HttpBackendServer, startHttpBackendServer } from "./http-backend-server";
import { backendRepository, gitRunner, hubAccount, hubRepository, median, ms, pad, type Side } from "./support";

const REPS = Number(process.env.BENCH_GIT_REPS ?? 3);
/** BENCH_GIT_TRACE=1: print the hub's request log for each fetch. */
const TRACE = process.env.BENCH_GIT_TRACE === "1";
const STEPS = [1, 21] as const;
const OPS = [
  "push (history, tags)",
  "clone",
  "push (1 commit)",
  "fetch (1 commit)",
  "push (20 commits)",
  "fetch (20 commits)",
] as const;
type Op = (typeof OPS)[number];

async function main() {
  const work = await mkdtemp(join(tmpdir(), "agent-hub-bench-git-tags-"));
  const { git, timed, env } = gitRunner(work);
  const persistTo = join(work, "hub-state");
  const projectRoot = join(work, "backend-root");
  const clones = join(work, "clones");
  await Promise.all([mkdir(persistTo), mkdir(projectRoot), mkdir(clones)]);
  let hub: Awaited<ReturnType<typeof startHubInWorkerd>> | null = null;
  let backend: HttpBackendServer | null = null;
  const cleanup = async () => {
    await backend?.stop().catch(() => {});
    await hub?.stop().catch(() => {});
    await rm(work, { recursive: true, force: true });
  };
  process.once("SIGINT", () => cleanup().finally(() => process.exit(130)));

  try {
    const source = join(work, "source.git");
    await git(work, "init", "-q", "--bare", "-b", "main", source);
    const t0 = performance.now();
    await generateTaggedRepository(
      source,
      { commits: 2200, tagEvery: 5, mergeEvery: 8, branches: 4, textFiles: 300, steps: STEPS },
      env(),
    );
    await git(source, "repack", "-q", "-a", "-d", "-f");
    await git(source, "gc", "-q");
    const refs = (await git(source, "for-each-ref", "--format=%(refname)")).split("\n");
    const tags = refs.filter((r) => r.startsWith("refs/tags/")).length;
    const branches = refs.filter((r) => r.startsWith("refs/heads/") && !r.startsWith("refs/heads/step-"));
    const commits = Number(await git(source, "rev-list", "--count", "--all"));
    const merges = Number(await git(source, "rev-list", "--count", "--merges", "--all"));
    const expected = {
      1: (await git(source, "rev-list", "--objects", "step-1", "^main")).split("\n").length,
      21: (await git(source, "rev-list", "--objects", "step-21", "^step-1")).split("\n").length,
    };
    const stepSha = { 1: await git(source, "rev-parse", "step-1"), 21: await git(source, "rev-parse", "step-21") };
    console.log(
      `source: ${commits} commits (${merges} merges), ${tags} annotated tags, ${branches.length} branches; ` +
        `generated and packed in ${ms(performance.now() - t0)}. A fetch of 1 commit brings ${expected[1]} objects, ` +
        `of 20 commits ${expected[21]}.`,
    );

    await applyMigrations({ persistTo, quiet: true });
    hub = await startHubInWorkerd({ port: await freePort(), persistTo });
    backend = await startHttpBackendServer({ projectRoot });
    const account = await hubAccount(hub.url);

    const samples = Object.fromEntries(
      (["hub", "backend"] as const).map((s) => [s, Object.fromEntries(OPS.map((o) => [o, [] as number[]]))]),
    ) as Record<Side, Record<Op, number[]>>;
    const received: Record<Side, Record<1 | 21, number[]>> = { hub: { 1: [], 21: [] }, backend: { 1: [], 21: [] } };

    for (let rep = 1; rep <= REPS; rep++) {
      for (const side of ["hub", "backend"] as const) {
        const name = `tags-${rep}-${Math.random().toString(36).slice(2, 8)}`;
        const url =
          side === "hub"
            ? await hubRepository(hub.url, account, name)
            : await backendRepository(git, projectRoot, backend.url, name);
        const clone = join(clones, `${side}-${rep}`);
        const step = async (op: Op, cwd: string, args: string[]) => {
          const { ms: elapsed, stderr } = await timed(cwd, args).catch((err: Error) => {
            throw side === "hub" ? new Error(`${err.message}\n--- hub log ---\n${hub?.output().slice(-8192)}`) : err;
          });
          samples[side][op].push(elapsed);
          process.stdout.write(`  rep ${rep} ${pad(side, 7)} ${pad(op, 22)} ${ms(elapsed)}\n`);
          return stderr;
        };
        // The hub creates a repository with a signed first commit on main: the history replaces it.
        const history = ["refs/tags/*:refs/tags/*", ...branches.map((b) => `+${b}:${b}`)];
        const pushLog = hub.output().length;
        await step("push (history, tags)", source, ["push", "-q", url, ...history]);
        if (TRACE && side === "hub") console.log(hub.output().slice(pushLog).replace(/^/gm, "      "));
        const cloneLog = hub.output().length;
        await step("clone", clones, ["clone", "-q", "--no-checkout", url, clone]);
        if (TRACE && side === "hub") console.log(hub.output().slice(cloneLog).replace(/^/gm, "      "));
        for (const [n, op, fetchOp] of [
          [1, "push (1 commit)", "fetch (1 commit)"],
          [21, "push (20 commits)", "fetch (20 commits)"],
        ] as const) {
          await step(op, source, ["push", "-q", url, `step-${n}:main`]);
          const logFrom = hub.output().length;
          const stderr = await step(fetchOp, clone, ["-c", "fetch.unpackLimit=1", "fetch", "--progress", "origin"]);
          // index-pack counts the pack as it arrives (before a thin pack is completed with local bases).
          received[side][n].push(Number(/Receiving objects: 100% \((\d+)\/\d+\)/.exec(stderr)?.[1] ?? Number.NaN));
          if (TRACE && side === "hub") console.log(hub.output().slice(logFrom).replace(/^/gm, "      "));
          const fetched = await git(clone, "rev-parse", "origin/main");
          if (fetched !== stepSha[n]) throw new Error(`${side}: origin/main is ${fetched}, expected ${stepSha[n]}`);
        }
        await rm(clone, { recursive: true, force: true });
      }
    }

    console.log(
      `\n${await git(work, "--version")}, loopback, ${REPS} repetitions interleaved, protocol v2 for fetches.`,
    );
    const header = `${pad("operation", 22)} ${pad("hub median", 11)} ${pad("backend med.", 12)} ${pad("hub/backend", 11)} ${pad("hub samples", 28)} backend samples`;
    console.log(header);
    console.log("-".repeat(header.length + 10));
    for (const op of OPS) {
      const h = median(samples.hub[op]);
      const b = median(samples.backend[op]);
      console.log(
        `${pad(op, 22)} ${pad(ms(h), 11)} ${pad(ms(b), 12)} ${pad(`${(h / b).toFixed(2)}x`, 11)} ` +
          `${pad(samples.hub[op].map(ms).join(", "), 28)} ${samples.backend[op].map(ms).join(", ")}`,
      );
    }
    for (const n of STEPS) {
      const want = expected[n];
      const counts = `hub ${received.hub[n].join(", ")}; backend ${received.backend[n].join(", ")}`;
      const exact = [...received.hub[n], ...received.backend[n]].every((c) => c === want);
      console.log(
        `objects received, fetch of ${n === 1 ? 1 : 20} commit(s): expected ${want}; ${counts} ${exact ? "(exact)" : "(MISMATCH)"}`,
      );
    }
    const ratio = median(samples.hub["fetch (1 commit)"]) / median(samples.backend["fetch (1 commit)"]);
    console.log(
      `\ntarget: incremental fetch of 1 commit within 1.5x of git http-backend: ${ratio <= 1.5 ? "MET" : "NOT MET"} (${ratio.toFixed(2)}x)`,
    );
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
