/**
 * Micro-benchmark of the grant engine: per-check latency of evaluateGrants (and explainGrants) over realistic
 * grant sets of 10, 100 and 1,000 grants. Plain Node, no network:
 *
 *   node_modules/.bin/tsx bench/authz/evaluator.ts
 *
 * Each sample times a batch of consecutive checks (a single check is close to the timer's resolution) and
 * reports the batch mean as that sample's per-check time. Sizes are interleaved over three repetitions and the
 * median of each statistic across repetitions is printed, so one noisy repetition does not decide the result.
 */

import { defaultConditionRegistry } from "../../src/authz/conditions";
import { evaluateGrants, explainGrants } from "../../src/authz/evaluate";
import type { Decision, Effect, GrantRule, RequestContext } from "../../src/authz/types";

const SIZES = [10, 100, 1_000] as const;
const REPETITIONS = 3;
const BATCH = 20;
const SAMPLES = 4_000;
const WARMUP_CHECKS = 20_000;
const TARGET_P99_MICROS = 50;

// Deterministic inputs, so runs are comparable.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const random = mulberry32(0xa11ce);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const hexId = (prefix: string) =>
  `${prefix}_${Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("")}`;

const NOW = Date.UTC(2026, 5, 1, 14, 30);
const ctx: RequestContext = {
  now: NOW,
  principalId: hexId("prn"),
  tenantId: hexId("tnt"),
  ip: "10.20.30.40",
  spentToday: "3.75",
  cost: "0.25",
};

/** System-role style grants: broad wildcards, as seeded for owner/admin/member plus a few tenant policies. */
const ROLE_GRANTS: [string, string, Effect][] = [
  ["*", "read", "allow"],
  ["*", "create", "allow"],
  ["*", "manage", "allow"],
  ["agent:*", "write", "allow"],
  ["credential:*", "*", "deny"],
  ["wallet:*", "write", "ask"],
  ["instance:*", "write", "allow"],
];

const CONDITIONS: Record<string, unknown>[] = [
  { time_window: { after: "08:00", before: "18:00", timezone: "Europe/Paris" } },
  { ip_range: { cidrs: ["10.0.0.0/8", "2001:db8::/32"] } },
  { max_spend_per_day: { amount: "10.00", currency: "USD" } },
];

interface Workload {
  grants: GrantRule[];
  requests: [resource: string, action: string][];
}

/** Role grants, then per-id grants (instances, agents, agent state) with some denies and conditional ones. */
function buildWorkload(size: number): Workload {
  const grants: GrantRule[] = [];
  const ids: string[] = [];
  const add = (resource: string, action: string, effect: Effect, conditions: Record<string, unknown> | null) =>
    grants.push({ id: hexId("grt"), resource, action, effect, conditions, expiresAt: null, origin: "role" });
  for (const [resource, action, effect] of ROLE_GRANTS.slice(0, Math.min(size, ROLE_GRANTS.length))) {
    add(resource, action, effect, null);
  }
  for (let n = 0; grants.length < size; n++) {
    const kind = pick(["instance", "instance", "agent", "agent-state"]);
    const id = hexId(kind === "agent" ? "agt" : "ins");
    ids.push(`${kind}:${id}`);
    const effect: Effect = n % 9 === 4 ? "deny" : n % 23 === 7 ? "ask" : "allow";
    const conditions = n % 5 === 2 ? pick(CONDITIONS) : null;
    add(`${kind}:${id}`, pick(["read", "write", "manage", "*"]), effect, conditions);
  }
  const requests: [string, string][] = Array.from({ length: 1_024 }, (_, i) => {
    const action = pick(["read", "write", "manage", "create"]);
    if (i % 4 === 0 || ids.length === 0)
      return [`${pick(["instance", "agent", "credential", "wallet"])}:${hexId("x")}`, action];
    return [pick(ids), action];
  });
  return { grants, requests };
}

interface Stats {
  p50: number;
  p99: number;
  mean: number;
}

type Check = (grants: GrantRule[], resource: string, action: string) => Decision;
const evaluate: Check = (g, r, a) => evaluateGrants(g, r, a, ctx, defaultConditionRegistry);
const explain: Check = (g, r, a) => explainGrants(g, r, a, ctx, defaultConditionRegistry);

/** Keeps results observable so the JIT cannot drop the calls. */
let sink = 0;

function measure(workload: Workload, check: Check, samples: number): Stats {
  const { grants, requests } = workload;
  let next = 0;
  const run = () => {
    const [resource, action] = requests[next++ % requests.length] as [string, string];
    if (check(grants, resource, action).allowed) sink++;
  };
  for (let i = 0; i < WARMUP_CHECKS; i++) run();
  const perCheck = new Float64Array(samples);
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) run();
    perCheck[s] = Number(process.hrtime.bigint() - start) / BATCH / 1_000;
  }
  perCheck.sort();
  const quantile = (q: number) => perCheck[Math.min(samples - 1, Math.floor(q * samples))] ?? Number.NaN;
  return { p50: quantile(0.5), p99: quantile(0.99), mean: perCheck.reduce((a, b) => a + b, 0) / samples };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function medianStats(runs: Stats[]): Stats {
  return {
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    mean: median(runs.map((r) => r.mean)),
  };
}

const fmt = (micros: number) => micros.toFixed(2).padStart(9);

function printTable(title: string, rows: [label: string, stats: Stats, runs: Stats[]][]): void {
  console.log(`\n${title} (µs per check; median of ${REPETITIONS} repetitions; p99 range across repetitions)`);
  console.log(`${"grants".padEnd(12)}${"p50".padStart(9)}${"p99".padStart(9)}${"mean".padStart(9)}   p99 range`);
  for (const [label, stats, runs] of rows) {
    const p99s = runs.map((r) => r.p99);
    const range = `${Math.min(...p99s).toFixed(2)}-${Math.max(...p99s).toFixed(2)}`;
    console.log(`${label.padEnd(12)}${fmt(stats.p50)}${fmt(stats.p99)}${fmt(stats.mean)}   ${range}`);
  }
}

function main(): void {
  const workloads = new Map(SIZES.map((size) => [size, buildWorkload(size)]));
  const evaluateRuns = new Map<number, Stats[]>(SIZES.map((size) => [size, []]));
  const explainRuns: Stats[] = [];
  for (let rep = 0; rep < REPETITIONS; rep++) {
    for (const size of SIZES) {
      const workload = workloads.get(size) as Workload;
      evaluateRuns.get(size)?.push(measure(workload, evaluate, SAMPLES));
    }
    explainRuns.push(measure(workloads.get(1_000) as Workload, explain, SAMPLES / 4));
  }

  console.log(`node ${process.version}, batch of ${BATCH} checks per sample, ${SAMPLES} samples per run`);
  const rows = SIZES.map((size): [string, Stats, Stats[]] => {
    const runs = evaluateRuns.get(size) ?? [];
    return [String(size), medianStats(runs), runs];
  });
  printTable("evaluateGrants", rows);
  printTable("explainGrants", [["1000", medianStats(explainRuns), explainRuns]]);

  const p99At1000 = rows.at(-1)?.[1].p99 ?? Number.NaN;
  const met = p99At1000 < TARGET_P99_MICROS;
  console.log(
    `\ntarget: evaluateGrants p99 < ${TARGET_P99_MICROS} µs at 1,000 grants: ${met ? "MET" : "NOT MET"} (${p99At1000.toFixed(2)} µs)`,
  );
  console.log(`(allowed checks: ${sink})`);
}

main();
