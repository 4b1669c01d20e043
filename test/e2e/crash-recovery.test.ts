/**
 * Crashes of the hub: its processes (wrangler and workerd) killed with SIGKILL in the middle of a git push,
 * a launch, wallet debits and an SSE stream, then started again on the same local state and port, with the
 * reference sidecar reconnecting by itself. What a user sees afterwards is whole: the repository clones
 * and passes `git fsck`, every instance is launched or not at all, the ledger sums to the balance, and a
 * stream resumed with its Last-Event-ID lost nothing it had been sent.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, freePort, noRateLimits, startHub } from "../../scripts/hub.mjs";
import { createAssetRepo, gitEnv, gitRunner } from "./support/git-cli";
import { client, uniqueName } from "./support/hub-client";
import { d1Rows, writeD1 } from "./support/local-state";
import {
  instanceEvents,
  instancePath,
  type RuntimeTenant,
  runSidecar,
  setUpRuntimeTenant,
  sleep,
  until,
} from "./support/runtime-tenant";
import type { SseMessage } from "./support/sse";

/** How long a push lease lasts without renewal (src/git/storage/repositories.ts). */
const PUSH_LEASE_MS = 10_000;
/** When the cleanup pass takes a launch still `deployed` (src/runtime/instances.ts). */
const INTERRUPTED_LAUNCH_MS = 2 * 60_000;

let work: string;
let persistTo: string;
let port: number;
let hub: Awaited<ReturnType<typeof startHub>>;
let s: RuntimeTenant;
let sidecar: ReturnType<typeof runSidecar>;
let walletId: string;
/** When the hub was last killed: a sidecar heartbeat after it comes from a new connection. */
let crashedAt = 0;

const { git } = gitRunner(() => work);
const api = () => client(hub.url);
const base = () => `/api/tenants/${s.tenantId}`;

// Same state and same port: the sidecar finds the hub where it was.
const start = () => startHub({ port, persistTo, quiet: true, vars: noRateLimits, testScheduled: true, detached: true });

/** SIGKILL to wrangler and workerd at once. */
async function crash(): Promise<void> {
  await hub.kill();
  crashedAt = Date.now();
}

async function restart(): Promise<void> {
  hub = await start();
}

/** The sidecar's control channel is back (D1 still says `online` from before the crash). */
async function sidecarBack(): Promise<void> {
  await until(
    "the sidecar to reconnect",
    async () => {
      const res = await api().call("GET", `${base()}/sidecars/${s.sidecarId}`, s.owner.token);
      return res.body?.status === "online" && Date.parse(res.body.lastHeartbeat) >= crashedAt;
    },
    60_000,
    100,
  );
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("close", () => resolve())));
}

/** Runs git; resolves with its exit code and stderr whatever the outcome. */
function gitOutcome(cwd: string, ...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("git", args, { cwd, env: gitEnv(work), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

type Instance = {
  id: string;
  status: string;
  sessionId: string | null;
  endedAt: string | null;
  stopReason: string | null;
};

const launchInstance = () =>
  api().ok<Instance>("POST", `${base()}/agents/instances`, s.owner.token, { agentId: s.agentId });

async function instances(): Promise<Instance[]> {
  return (await api().ok<{ data: Instance[] }>("GET", `${base()}/agents/instances?limit=100`, s.owner.token)).data;
}

/** The SQLite files of the instance objects (Miniflare keeps one per Durable Object). */
function instanceObjectFiles(): Set<string> {
  const root = join(persistTo, "v3", "do");
  const dir = readdirSync(root).find((d) => d.endsWith("InstanceObject"));
  return new Set(dir ? readdirSync(join(root, dir)).map((f) => join(root, dir, f)) : []);
}

/** Resolves with the one instance object file that was not in `known`. */
async function newObjectFile(known: Set<string>): Promise<string> {
  return until(
    "the instance's object to store its setup",
    async () => [...instanceObjectFiles()].find((f) => f.endsWith(".sqlite") && !known.has(f)),
    10_000,
    10,
  );
}

/** Exact decimal strings (at most 18 places) as integers of 10⁻¹⁸. */
function units(amount: string): bigint {
  const [whole = "0", fraction = ""] = amount.split(".");
  return BigInt(whole) * 10n ** 18n + BigInt(fraction.padEnd(18, "0"));
}

type Transaction = {
  direction: string;
  amount: string;
  status: string;
  requestId: string | null;
  metadata: { kind?: string } | null;
};

async function ledger(): Promise<Transaction[]> {
  const all: Transaction[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const page: { data: Transaction[]; nextCursor: string | null } = await api().ok(
      "GET",
      `${base()}/wallets/${walletId}/transactions?limit=100${query}`,
      s.owner.token,
    );
    all.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}

/**
 * The wallet's balance and what its completed transactions add up to, read while no debit lands (turns
 * still being charged may run meanwhile): the balance is the same before and after the ledger was read.
 */
async function balanceAndLedger(): Promise<{ balance: bigint; sum: bigint; ledger: Transaction[] }> {
  const balance = async () =>
    units((await api().ok<{ balance: string }>("GET", `${base()}/wallets/${walletId}`, s.owner.token)).balance);
  return until(
    "a read of the ledger with no debit landing",
    async () => {
      const before = await balance();
      const rows = await ledger();
      if ((await balance()) !== before) return false;
      let sum = 0n;
      for (const t of rows.filter((t) => t.status === "completed")) {
        sum += t.direction === "inbound" ? units(t.amount) : -units(t.amount);
      }
      return { balance: before, sum, ledger: rows };
    },
    30_000,
    200,
  );
}

/** The ids of a stream's messages, in order (only `cursor_expired` has none). */
const idsOf = (messages: SseMessage[]) => messages.filter((m) => m.id !== null).map((m) => Number(m.id));

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "agent-hub-crash-"));
  persistTo = join(work, "hub-state");
  port = await freePort();
  await applyMigrations({ persistTo, quiet: true });
  hub = await start();
  s = await setUpRuntimeTenant(hub.url);
  walletId = (await api().ok("GET", `${base()}/wallets`, s.owner.token)).data[0].id;
  // The echo model at a price, so that each of its calls is a debit (docs/metering.md). Set before any
  // launch: an instance takes the price at launch.
  const providers = await api().ok("GET", `${base()}/providers`, s.owner.token);
  const echo = providers.data.find((p: { name: string }) => p.name === "echo");
  await api().ok("PATCH", `${base()}/providers/${echo.id}`, s.owner.token, {
    metadata: {
      baseURL: "http://127.0.0.1/echo",
      models: [{ id: "echo", pricing: { input: "3", output: "15", currency: "USD" } }],
    },
  });
  await api().ok("POST", `${base()}/wallets/${walletId}/transactions`, s.owner.token, {
    direction: "inbound",
    amount: "1000",
  });
  // Room for every instance of this file (a failed launch still counts against a sidecar's capacity).
  await api().ok("PATCH", `${base()}/sidecars/${s.sidecarId}`, s.owner.token, { capacity: 16 });
  sidecar = runSidecar(hub.url, s);
  await sidecarBack();
}, 120_000);

afterAll(async () => {
  sidecar?.child.kill("SIGCONT");
  await sidecar?.stop();
  await hub?.stop();
  if (s) await rm(s.stateDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe("the hub killed with SIGKILL mid-operation, restarted on the same state", () => {
  // The lease, its message and the cleanup of packs are test/e2e/git-lease.test.ts's; here, what is left.
  it("mid-push: every ref it advertises resolves, the clone passes fsck, and the push goes through again", async () => {
    const repo = await createAssetRepo(hub.url, s.owner, s.tenantId);
    const url = repo.url(await api().gitToken(s.owner, s.tenantId, `asset:${repo.assetId}`));
    const dir = join(work, uniqueName("push"));
    await git(work, "clone", "-q", url, dir);
    const before = (await git(work, "ls-remote", url, "refs/heads/main")).split("\t")[0] || null;
    for (let i = 0; i < 12; i++) await writeFile(join(dir, `blob-${i}.bin`), randomBytes(1024 * 1024));
    await git(dir, "add", ".");
    await git(dir, "commit", "-q", "-m", "12 MB");
    const tip = await git(dir, "rev-parse", "HEAD");

    const pushing = spawn("git", ["push", "origin", "main"], { cwd: dir, env: gitEnv(work), stdio: "ignore" });
    // The hub holds the push lease once the push is in its transaction.
    await until(
      "the push to take the lease",
      async () =>
        d1Rows<{ lease_token: string | null }>(
          persistTo,
          "select lease_token from git_repository where id = ?",
          `asset/${repo.assetId}`,
        )[0]?.lease_token,
      60_000,
      10,
    );
    await crash();
    pushing.kill("SIGKILL");
    await exited(pushing);
    await restart();

    // The push landed whole or not at all, and each advertised ref, fetched on its own into a fresh clone,
    // names objects the hub serves: fsck then checks everything they reach.
    const advertised = (await git(work, "ls-remote", url)).split("\n").map((line) => line.split("\t"));
    const main = advertised.find(([, ref]) => ref === "refs/heads/main")?.[0] ?? null;
    expect([before, tip]).toContain(main);
    const check = join(work, uniqueName("check"));
    await git(work, "clone", "-q", url, check);
    for (const [i, [sha, ref]] of advertised.entries()) {
      await git(check, "fetch", "-q", "origin", `+${ref}:refs/advertised/${i}`);
      expect(await git(check, "rev-parse", `refs/advertised/${i}`)).toBe(sha);
    }
    await git(check, "fsck", "--full", "--strict");

    // The same push again: refused while the dead push's lease runs, then taken.
    const restarted = Date.now();
    let pushed = await gitOutcome(dir, "push", "origin", "main");
    while (pushed.code !== 0 && Date.now() - restarted < PUSH_LEASE_MS + 10_000) {
      expect(pushed.stderr).toMatch(/another push to this repository is in progress; retry in \d+ s/);
      await sleep(500);
      pushed = await gitOutcome(dir, "push", "origin", "main");
    }
    expect(pushed.code, pushed.stderr).toBe(0);
    const again = join(work, uniqueName("again"));
    await git(work, "clone", "-q", url, again);
    expect(await git(again, "rev-parse", "HEAD")).toBe(tip);
    await git(again, "fsck", "--full", "--strict");
  });

  it("mid-launch: every instance is launched or not at all, and launching works again", async () => {
    await sidecarBack();
    const known = new Set((await instances()).map((i) => i.id));
    // Frozen, the sidecar keeps its sockets open but answers nothing: each launch writes its rows, hands
    // the instance to its object and waits for the sidecar, and the crash finds both waiting.
    sidecar.child.kill("SIGSTOP");
    let waitingForSidecar: Instance;
    let beforeItsObject: Instance;
    try {
      const launched = async () => {
        const objects = instanceObjectFiles();
        const answer = api()
          .call("POST", `${base()}/agents/instances`, s.owner.token, { agentId: s.agentId })
          .then((res) => res.status)
          .catch(() => "no answer");
        const row = await until(
          "the launch to be listed",
          async () => (await instances()).find((i) => !known.has(i.id)),
          10_000,
          10,
        );
        known.add(row.id);
        expect(row).toMatchObject({ status: "deployed" });
        return { row, answer, object: await newObjectFile(objects) };
      };
      const first = await launched();
      const second = await launched();
      await crash();
      // Neither launch was answered: the user never learned either outcome.
      expect(await first.answer).toBe("no answer");
      expect(await second.answer).toBe("no answer");
      waitingForSidecar = first.row;
      beforeItsObject = second.row;

      // The narrowest moment of a launch — its rows written, its object not yet given the setup — lasts
      // milliseconds. The second launch is moved there: with the hub down nothing has its object's storage
      // open, so it is removed; and its rows are dated back past the cleanup pass's threshold rather than
      // waiting that long.
      for (const f of instanceObjectFiles()) if (f.startsWith(second.object)) await rm(f);
      const longAgo = Date.now() - INTERRUPTED_LAUNCH_MS - 60_000;
      writeD1(
        persistTo,
        "update agent_instance set created_at = ?, updated_at = ? where id = ?",
        longAgo,
        longAgo,
        second.row.id,
      );
    } finally {
      sidecar.child.kill("SIGCONT");
    }
    await restart();

    // The sidecar comes back and finishes the launch that was waiting for it; the cleanup pass (the cron
    // trigger, run on demand) settles the one that nothing else will ever finish.
    await until(
      "the waiting launch to run",
      async () => (await instances()).find((i) => i.id === waitingForSidecar.id)?.status === "running",
      60_000,
      200,
    );
    expect((await fetch(`${hub.url}/__scheduled?cron=${encodeURIComponent("*/5 * * * *")}`)).status).toBe(200);
    await until(
      "the cut-off launch to be settled",
      async () => (await instances()).find((i) => i.id === beforeItsObject.id)?.status !== "deployed",
      10_000,
      200,
    );

    const listed = await instances();
    for (const i of listed) {
      if (i.status === "running") expect(i, i.id).toMatchObject({ sessionId: expect.any(String), endedAt: null });
      else expect(i, i.id).toMatchObject({ status: expect.stringMatching(/^(stopped|error)$/), sessionId: null });
    }
    expect(listed.find((i) => i.id === beforeItsObject.id)).toMatchObject({
      status: "error",
      stopReason: expect.stringContaining("interrupted"),
      endedAt: expect.any(String),
    });

    // Launched means working: the recovered instance answers mail, and a new launch runs.
    const sse = instanceEvents(hub.url, s, waitingForSidecar.id);
    await sse.open();
    await api().ok("POST", `${instancePath(s, waitingForSidecar.id)}/mail`, s.owner.token, { content: "still here" });
    await sse.waitFor((m) =>
      m.some((x) => x.data.type === "turn.committed" && x.data.data.text === "Echo: still here"),
    );
    await sse.close();
    expect(await launchInstance()).toMatchObject({ status: "running", sessionId: expect.any(String) });
  });

  it("mid-debit: the ledger sums to the balance, holds every answered debit, and a retry charges nothing more", async () => {
    await sidecarBack();
    const metered = await launchInstance();
    // Debits from two sides at once until the crash: by hand through the API, four at a time, and for
    // the model calls of the turns that mail to the instance starts.
    let crashed = false;
    const answered = new Set<string>();
    const unanswered = new Set<string>();
    let n = 0;
    const debitLoop = async () => {
      while (!crashed) {
        const requestId = `crash-debit-${n++}`;
        const res = await api()
          .call("POST", `${base()}/wallets/${walletId}/transactions`, s.owner.token, {
            direction: "outbound",
            amount: "0.25",
            requestId,
          })
          .catch(() => null);
        if (res === null) unanswered.add(requestId);
        else {
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          answered.add(requestId);
        }
      }
    };
    const mailLoop = async () => {
      for (let k = 0; !crashed; k++) {
        await api()
          .call("POST", `${instancePath(s, metered.id)}/mail`, s.owner.token, { content: `bill me ${k}` })
          .catch(() => null);
        await sleep(50);
      }
    };
    const loops = [debitLoop(), debitLoop(), debitLoop(), debitLoop(), mailLoop()];
    await until(
      "debits of both kinds to land",
      async () => {
        const kinds = d1Rows<{ kind: string | null; n: number }>(
          persistTo,
          `select json_extract(metadata, '$.kind') as kind, count(*) as n from "transaction"
           where wallet_id = ? and direction = 'outbound' group by kind`,
          walletId,
        );
        const count = (kind: string | null) => kinds.find((k) => k.kind === kind)?.n ?? 0;
        return count("model_call") >= 2 && count(null) >= 12;
      },
      30_000,
      20,
    );
    await crash();
    crashed = true;
    await Promise.all(loops);
    expect(unanswered.size).toBeGreaterThan(0);
    await restart();

    const after = await balanceAndLedger();
    expect(after.sum).toBe(after.balance);
    const byRequest = new Map<string, number>();
    for (const t of after.ledger) if (t.requestId) byRequest.set(t.requestId, (byRequest.get(t.requestId) ?? 0) + 1);
    for (const id of answered) expect(byRequest.get(id), id).toBe(1);
    expect(after.ledger.filter((t) => t.metadata?.kind === "model_call").length).toBeGreaterThanOrEqual(2);

    // What a client does with a debit the crash left unanswered: send it again with its requestId. One that
    // had landed is answered 200 with its transaction, one that had not is made now, once either way.
    for (const requestId of unanswered) {
      const retried = await api().call("POST", `${base()}/wallets/${walletId}/transactions`, s.owner.token, {
        direction: "outbound",
        amount: "0.25",
        requestId,
      });
      expect(retried.status).toBe(byRequest.has(requestId) ? 200 : 201);
    }
    // Metering goes on once the sidecar is back, and the ledger still sums.
    await sidecarBack();
    const sse = instanceEvents(hub.url, s, metered.id);
    await sse.open();
    await api().ok("POST", `${instancePath(s, metered.id)}/mail`, s.owner.token, { content: "one more" });
    await sse.waitFor((m) => m.some((x) => x.data.type === "usage.charged"), 30_000);
    await sse.close();
    const final = await balanceAndLedger();
    expect(final.sum).toBe(final.balance);
    for (const id of unanswered) expect(final.ledger.filter((t) => t.requestId === id)).toHaveLength(1);
    expect(final.ledger.length).toBeGreaterThan(after.ledger.length);
  });

  it("mid-stream: resuming with Last-Event-ID loses nothing that was sent, and ids go on without a gap", async () => {
    await sidecarBack();
    const { id } = await launchInstance();
    const watcher = instanceEvents(hub.url, s, id);
    await watcher.open();
    const words = Array.from({ length: 1500 }, (_, i) => `w${i}`).join(" ");
    await api().ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: words });
    await watcher.waitFor((m) => m.filter((x) => x.data.type === "inference.text.delta").length >= 30);
    await crash();
    await watcher.close();
    const seen = watcher.messages.filter((m) => m.id !== null);
    const lastSeen = watcher.lastId() as string;
    // Still in the turn: the crash cut the stream while events flowed.
    expect(seen.some((m) => m.data.type === "turn.committed")).toBe(false);
    await restart();

    // The client comes back with its Last-Event-ID: what follows starts right after it, with no gap, and
    // the turn the crash cut off ends failed once the sidecar is back (it stopped the turn when it lost
    // the hub), rather than staying "running".
    const resumed = instanceEvents(hub.url, s, id);
    await resumed.open(lastSeen);
    await resumed.waitFor((m) => m.some((x) => x.data.type === "sidecar.reconnected"), 60_000);
    const turnId = seen.find((m) => m.data.type === "turn.started")?.data.data.turnId;
    expect(resumed.messages.find((m) => m.data.type === "turn.failed")?.data.data).toEqual({
      turnId,
      reason: "sidecar_disconnected",
    });
    const turns = await api().ok("GET", `${instancePath(s, id)}/turns`, s.owner.token);
    expect(turns.data.find((t: { id: string }) => t.id === turnId)?.status).toBe("failed");

    // Nothing sent before the crash was lost or renumbered: the whole log, replayed, holds every event the
    // client saw under the same id, and the ids before and after the crash run on without a gap.
    await api().ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: "after the crash" });
    await resumed.waitFor((m) => m.some((x) => x.data.type === "turn.committed"), 30_000);
    // Closed before its last id is read: events still arriving (the turn's usage) must not land after it.
    await resumed.close();
    const lastResumed = resumed.lastId() as string;
    const replay = instanceEvents(hub.url, s, id);
    await replay.open("0");
    await replay.waitFor((m) => m.some((x) => x.id === lastResumed));
    await replay.close();
    const replayed = new Map(replay.messages.map((m) => [m.id, m]));
    for (const m of seen) expect(replayed.get(m.id), `event ${m.id}`).toEqual(m);
    const resumedIds = idsOf(resumed.messages);
    expect(resumedIds[0]).toBe(Number(lastSeen) + 1);
    const first = Number(seen[0]?.id);
    expect([...idsOf(seen), ...resumedIds]).toEqual(range(first, Number(lastResumed)));
    expect(idsOf(replay.messages).filter((x) => x <= Number(lastResumed))).toEqual(range(1, Number(lastResumed)));
  });
});
