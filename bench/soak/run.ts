/**
 * A bounded soak: mixed REST, git and SSE traffic from several tenants at once against one hub (wrangler
 * dev, real local D1, R2 and Durable Objects) and one reference sidecar per tenant, for SOAK_SECONDS.
 *
 * Prints per minute: requests by kind, their p50/p99, 5xx, cross-tenant answers that were not 404, and the
 * heap of each Worker isolate (Runtime.getHeapUsage through the inspector, not workerd's RSS). At the end:
 * the totals, whether every SSE stream saw every event once and in order (each mail's turn included), and
 * whether the heap is flat after the warm-up (the last minutes against the first after warm-up).
 *
 * Run: npm run bench:soak   (loopback only; its own hub on a free port, fresh state)
 * Knobs: SOAK_SECONDS=600 SOAK_TENANTS=4 SOAK_WARMUP_SECONDS=120
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyMigrations, freePort, noRateLimits, startHub, startSidecar } from "../../scripts/hub.mjs";
import { SseClient } from "../../test/e2e/support/sse";
import { gitRunner, hubRepository, median } from "../git/support";
import { connectIsolateHeap, type IsolateHeap } from "../support/isolate-heap";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const TENANTS = Number(process.env.SOAK_TENANTS ?? 4);
const WARMUP_S = Number(process.env.SOAK_WARMUP_SECONDS ?? Math.min(120, SECONDS / 4));

type Kind = "rest-read" | "rest-write" | "mail" | "cross-tenant" | "git-push" | "git-clone";
type Sample = { at: number; kind: Kind; ms: number; status: number };

const samples: Sample[] = [];
const failures: string[] = [];
let leaks = 0;
const start = performance.now();
const elapsed = () => (performance.now() - start) / 1000;

async function call(url: string, kind: Kind, method: string, path: string, token: string, body?: unknown) {
  const t0 = performance.now();
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  samples.push({ at: elapsed(), kind, ms: performance.now() - t0, status: res.status });
  if (res.status >= 500) failures.push(`${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
  try {
    return { status: res.status, body: text ? JSON.parse(text) : null };
  } catch {
    failures.push(`${method} ${path} → ${res.status}, not JSON: ${text.slice(0, 200)}`);
    return { status: res.status, body: null };
  }
}

type Tenant = {
  index: number;
  url: string;
  token: string;
  tenantId: string;
  agentId: string;
  instanceId: string;
  sse: SseClient;
  mailsAnswered: number;
  agents: Set<string>;
  repoUrl: string;
  workDir: string;
  stateDir: string;
  sidecar: ReturnType<typeof startSidecar>;
};

async function setUpTenant(url: string, index: number, root: string): Promise<Tenant> {
  const email = `soak-${index}-${Date.now()}@example.test`;
  const signUp = await fetch(`${url}/api/auth/sign-up/email`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: `Soak ${index}`, email, password: "soak password 123" }),
  });
  if (signUp.status !== 200) throw new Error(`sign-up → ${signUp.status} ${await signUp.text()}`);
  const token = signUp.headers.get("set-auth-token") as string;
  const ok = async (method: string, path: string, body?: unknown) => {
    const res = await call(url, "rest-write", method, path, token, body);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const tenant = await ok("POST", "/api/tenants", { name: `Soak ${index}`, slug: `soak-${index}-${Date.now()}` });
  const base = `/api/tenants/${tenant.id}`;
  const registered = await ok("POST", `${base}/sidecars`, { name: `soak-sidecar-${index}`, capacity: 4 });
  const provider = await ok("POST", `${base}/providers`, {
    name: "echo",
    plugin: "echo",
    metadata: { baseURL: "http://127.0.0.1/echo" },
  });
  await ok("POST", `${base}/credentials`, {
    name: "echo-key",
    type: "api_key",
    providerId: provider.id,
    secret: "unused-offline",
  });
  await ok("POST", `${base}/wallets`, { name: "Budget", backendType: "credits", currency: "USD" });
  const agent = await ok("POST", `${base}/agents/definitions`, {
    name: "Echo",
    systemPrompt: "You repeat what you are told.",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
  });
  const stateDir = await mkdtemp(join(root, `sidecar-${index}-`));
  const sidecar = startSidecar({ hubUrl: url, secret: registered.secret, stateDir, quiet: true });
  for (let i = 0; ; i++) {
    const res = await call(url, "rest-read", "GET", `${base}/sidecars/${registered.id}`, token);
    if (res.body?.status === "online") break;
    if (i > 300) throw new Error(`sidecar ${index} never came online: ${sidecar.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const instance = await ok("POST", `${base}/agents/instances`, { agentId: agent.id });
  const sse = new SseClient(`${url}${base}/agents/instances/${instance.id}/events`, {
    authorization: `Bearer ${token}`,
  });
  await sse.open();
  const repoUrl = await hubRepository(url, { token, tenantId: tenant.id }, `soak-${index}`);
  const workDir = await mkdtemp(join(root, `work-${index}-`));
  return {
    index,
    url,
    token,
    tenantId: tenant.id,
    agentId: agent.id,
    instanceId: instance.id,
    sse,
    mailsAnswered: 0,
    agents: new Set([agent.id]),
    repoUrl,
    workDir,
    stateDir,
    sidecar,
  };
}

const until = (deadline: number) => () => elapsed() < deadline;

/** Reads and writes of the tenant's own objects; every listed agent must be one it made. */
async function restLoop(t: Tenant, running: () => boolean): Promise<void> {
  const base = `/api/tenants/${t.tenantId}`;
  for (let round = 0; running(); round++) {
    const list = await call(t.url, "rest-read", "GET", `${base}/agents/definitions?limit=50`, t.token);
    for (const a of list.body?.data ?? []) {
      if (!t.agents.has(a.id)) {
        leaks++;
        failures.push(`tenant ${t.index} listed agent ${a.id} it never made`);
      }
    }
    await call(t.url, "rest-read", "GET", `${base}/agents/instances/${t.instanceId}`, t.token);
    await call(t.url, "rest-read", "GET", `${base}/agents/instances/${t.instanceId}/turns?limit=20`, t.token);
    await call(t.url, "rest-read", "GET", `${base}/wallets`, t.token);
    await call(t.url, "rest-read", "GET", `${base}/audit-log?limit=20`, t.token);
    if (round % 3 === 0 && t.agents.size < 40) {
      const made = await call(t.url, "rest-write", "POST", `${base}/agents/definitions`, t.token, {
        name: `Soak agent ${round}`,
        systemPrompt: "Soak.",
        modelConfig: { defaultModel: "echo" },
      });
      if (made.status === 201) {
        t.agents.add(made.body.id);
        await call(t.url, "rest-write", "PATCH", `${base}/agents/definitions/${made.body.id}`, t.token, {
          description: `patched in round ${round}`,
        });
      }
    }
  }
}

/** Another tenant's objects, asked for with this tenant's credentials: each answer must be a 404 or 403. */
async function crossTenantLoop(tenants: Tenant[], running: () => boolean): Promise<void> {
  while (running()) {
    for (const t of tenants) {
      const other = tenants[(t.index + 1) % tenants.length] as Tenant;
      const probes = [
        `/api/tenants/${t.tenantId}/agents/definitions/${other.agentId}`,
        `/api/tenants/${t.tenantId}/agents/instances/${other.instanceId}`,
        `/api/tenants/${other.tenantId}/agents/definitions`,
        `/api/tenants/${other.tenantId}/agents/instances/${other.instanceId}/turns`,
      ];
      for (const path of probes) {
        const res = await call(t.url, "cross-tenant", "GET", path, t.token);
        if (res.status !== 404 && res.status !== 403) {
          leaks++;
          failures.push(`tenant ${t.index} GET ${path} → ${res.status}`);
        }
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A mail every few seconds; the turn it starts must commit and stream. */
async function mailLoop(t: Tenant, running: () => boolean): Promise<void> {
  const path = `/api/tenants/${t.tenantId}/agents/instances/${t.instanceId}/mail`;
  for (let n = 0; running(); n++) {
    const sent = await call(t.url, "mail", "POST", path, t.token, { content: `soak message ${n}` });
    if (sent.status !== 201) {
      failures.push(`tenant ${t.index} mail ${n} → ${sent.status} ${JSON.stringify(sent.body)}`);
      continue;
    }
    const committed = () => t.sse.messages.filter((m) => m.data.type === "turn.committed").length;
    const want = t.mailsAnswered + 1;
    await t.sse
      .waitFor(() => committed() >= want, 60_000)
      .catch(() => {
        failures.push(`tenant ${t.index}: no turn.committed for mail ${n} within 60 s`);
      });
    t.mailsAnswered = committed();
    await new Promise((r) => setTimeout(r, 1_500));
  }
}

/** Commits and pushes; every third round a fresh clone, checked by `git fsck`, must have the pushed head. */
async function gitLoop(t: Tenant, running: () => boolean): Promise<void> {
  const { git } = gitRunner(t.workDir);
  const repo = join(t.workDir, "repo");
  // A new asset repository starts with the hub's first commit: work on top of it.
  await git(t.workDir, "clone", "-q", t.repoUrl, repo);
  for (let round = 0; running(); round++) {
    await writeFile(join(repo, `file-${round % 50}.txt`), `round ${round}\n${"x".repeat(1000 + round)}\n`);
    await git(repo, "add", "-A");
    await git(repo, "commit", "-q", "-m", `round ${round}`);
    const head = await git(repo, "rev-parse", "HEAD");
    let t0 = performance.now();
    try {
      await git(repo, "push", "-q", "origin", "HEAD");
      samples.push({ at: elapsed(), kind: "git-push", ms: performance.now() - t0, status: 200 });
    } catch (err) {
      samples.push({ at: elapsed(), kind: "git-push", ms: performance.now() - t0, status: 0 });
      failures.push(`tenant ${t.index} push ${round}: ${String(err).slice(-400)}`);
    }
    if (round % 3 === 2) {
      const clone = join(t.workDir, `clone-${round}`);
      t0 = performance.now();
      try {
        await git(t.workDir, "clone", "-q", t.repoUrl, clone);
        samples.push({ at: elapsed(), kind: "git-clone", ms: performance.now() - t0, status: 200 });
        await git(clone, "fsck", "--full", "--strict");
        const cloned = await git(clone, "rev-parse", "HEAD");
        if (cloned !== head) failures.push(`tenant ${t.index} clone ${round}: HEAD ${cloned}, pushed ${head}`);
      } catch (err) {
        samples.push({ at: elapsed(), kind: "git-clone", ms: performance.now() - t0, status: 0 });
        failures.push(`tenant ${t.index} clone ${round}: ${String(err).slice(-400)}`);
      }
      await rm(clone, { recursive: true, force: true });
    }
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

type HeapRow = { at: number; used: number[] };

async function heapLoop(heaps: IsolateHeap[], rows: HeapRow[], running: () => boolean): Promise<void> {
  while (running()) {
    rows.push({ at: elapsed(), used: await Promise.all(heaps.map(async (h) => (await h.read()).usedSize)) });
    await new Promise((r) => setTimeout(r, 5_000));
  }
}

const p = (xs: number[], q: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function printMinute(minute: number, rows: HeapRow[], titles: string[]): void {
  const inMinute = samples.filter((s) => s.at >= minute * 60 && s.at < (minute + 1) * 60);
  const kinds = [...new Set(inMinute.map((s) => s.kind))].sort();
  const parts = kinds.map((k) => {
    const ms = inMinute.filter((s) => s.kind === k).map((s) => s.ms);
    return `${k} ${ms.length} (p50 ${p(ms, 0.5).toFixed(0)}, p99 ${p(ms, 0.99).toFixed(0)} ms)`;
  });
  const fives = inMinute.filter((s) => s.status >= 500).length;
  const heap = rows.filter((r) => r.at >= minute * 60 && r.at < (minute + 1) * 60);
  const heapText = titles
    .map((title, i) => `${title} ${mb(median(heap.map((r) => r.used[i] as number)) || 0)} MB`)
    .join(", ");
  console.log(`minute ${minute + 1}: ${parts.join("; ")}; 5xx ${fives}; heap (median) ${heapText}`);
}

function checkStream(t: Tenant): string[] {
  const problems: string[] = [];
  const ids = t.sse.messages.filter((m) => m.id !== null).map((m) => Number(m.id));
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] !== (ids[i - 1] as number) + 1) problems.push(`ids ${ids[i - 1]} then ${ids[i]}`);
  }
  const committed = t.sse.messages.filter((m) => m.data.type === "turn.committed").length;
  if (committed < t.mailsAnswered) problems.push(`${committed} turns committed, ${t.mailsAnswered} expected`);
  return problems.slice(0, 5);
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "agent-hub-soak-"));
  const persistTo = join(root, "state");
  await applyMigrations({ persistTo, quiet: true });
  const hub = await startHub({ port: await freePort(), persistTo, quiet: true, vars: noRateLimits });
  const tenants: Tenant[] = [];
  const heaps: IsolateHeap[] = [];
  try {
    const targets = (await (await fetch(`http://127.0.0.1:${hub.inspectorPort}/json`)).json()) as { title: string }[];
    for (let i = 0; i < targets.length; i++) heaps.push(await connectIsolateHeap(hub.inspectorPort, i));
    const titles = targets.map((t) => t.title);
    console.log(
      `Soak: ${TENANTS} tenants, ${SECONDS} s (warm-up ${WARMUP_S} s), hub ${hub.url}; isolates: ${titles.join(", ")}`,
    );
    for (let i = 0; i < TENANTS; i++) tenants.push(await setUpTenant(hub.url, i, root));
    console.log(`set up in ${elapsed().toFixed(1)} s; traffic for ${SECONDS} s\n`);

    const deadline = elapsed() + SECONDS;
    const running = until(deadline);
    const rows: HeapRow[] = [];
    let minute = Math.floor(elapsed() / 60);
    const reporter = setInterval(() => {
      while (Math.floor(elapsed() / 60) > minute) printMinute(minute++, rows, titles);
    }, 1_000);
    await Promise.all([
      heapLoop(heaps, rows, running),
      crossTenantLoop(tenants, running),
      ...tenants.flatMap((t) => [restLoop(t, running), mailLoop(t, running), gitLoop(t, running)]),
    ]);
    clearInterval(reporter);
    printMinute(minute, rows, titles);

    console.log("\nTotals:");
    for (const kind of [...new Set(samples.map((s) => s.kind))].sort()) {
      const ms = samples.filter((s) => s.kind === kind).map((s) => s.ms);
      console.log(
        `  ${kind.padEnd(13)} ${String(ms.length).padStart(6)}  p50 ${p(ms, 0.5).toFixed(0)} ms  p99 ${p(ms, 0.99).toFixed(0)} ms`,
      );
    }
    const fives = samples.filter((s) => s.status >= 500).length;
    const streamProblems = tenants.flatMap((t) => checkStream(t).map((x) => `tenant ${t.index} stream: ${x}`));
    const events = tenants.reduce((n, t) => n + t.sse.messages.length, 0);
    const turns = tenants.reduce((n, t) => n + t.mailsAnswered, 0);
    console.log(
      `  SSE: ${events} events on ${tenants.length} streams, ${turns} turns answered, problems ${streamProblems.length}`,
    );

    // Flat: the median heap of the last quarter of the run against the first minute after the warm-up.
    const afterWarmup = rows.filter((r) => r.at >= deadline - SECONDS + WARMUP_S);
    const first = afterWarmup.filter((r) => r.at < deadline - SECONDS + WARMUP_S + 60);
    const last = afterWarmup.filter((r) => r.at >= deadline - Math.max(60, SECONDS / 4));
    const growth = titles.map((title, i) => {
      const a = median(first.map((r) => r.used[i] as number));
      const b = median(last.map((r) => r.used[i] as number));
      const peak = Math.max(...rows.map((r) => r.used[i] as number));
      return { title, a, b, peak, grew: b > a * 1.25 + 4 * 1024 * 1024 };
    });
    for (const g of growth) {
      console.log(
        `  heap ${g.title}: ${mb(g.a)} MB after warm-up, ${mb(g.b)} MB at the end, peak ${mb(g.peak)} MB${g.grew ? "  GREW" : ""}`,
      );
    }
    console.log(`\n5xx: ${fives}; cross-tenant answers that were not 403/404: ${leaks}`);
    for (const f of [...failures, ...streamProblems].slice(0, 20)) console.log(`  ! ${f}`);
    const met =
      fives === 0 && leaks === 0 && streamProblems.length === 0 && failures.length === 0 && !growth.some((g) => g.grew);
    console.log(
      `verdict: ${met ? "MET" : "NOT MET"} (0 5xx, 0 cross-tenant data, every event once, heap flat after warm-up)`,
    );
  } finally {
    for (const h of heaps) h.close();
    for (const t of tenants) await t.sidecar.stop();
    await hub.stop();
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
