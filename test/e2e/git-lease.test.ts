/**
 * The push lease with the real `git` client and a hub of this file's own, killed (SIGKILL) in the middle of
 * a push and restarted on the same state: until the dead push's lease runs out, a push is told why it is
 * refused and when to retry, in git's own output; then the next push goes through, within seconds, with
 * the repository intact and, once the cleanup pass has run, no pack file in R2 the catalog does not name.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, freePort, noRateLimits, startHub } from "../../scripts/hub.mjs";
import { sleep } from "../support/poll";
import { gitEnv as sharedGitEnv } from "./support/git-cli";
import { client, type Session, uniqueName } from "./support/hub-client";
import { d1Rows, r2Keys, writeD1 } from "./support/local-state";

/** The lease's length without renewal (src/git/storage/repositories.ts). */
const PUSH_LEASE_MS = 10_000;

const run = promisify(execFile);
let work: string;
let persistTo: string;
let hub: Awaited<ReturnType<typeof startHub>>;

const gitEnv = () => sharedGitEnv(work);

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: gitEnv(), maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** Runs git; resolves with its exit code and stderr whatever the outcome. */
function gitOutcome(cwd: string, ...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("git", args, { cwd, env: gitEnv(), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("close", () => resolve())));
}

/** Polls until the repository's push lease is held (a push is in its transaction). */
async function leaseHeld(repositoryId: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = d1Rows<{ lease_token: string | null }>(
      persistTo,
      "select lease_token from git_repository where id = ?",
      repositoryId,
    );
    if (row?.lease_token) return;
    await sleep(10);
  }
  throw new Error(`the push never took the lease of ${repositoryId}`);
}

function setLeaseExpiry(repositoryId: string, at: number): void {
  writeD1(persistTo, "update git_repository set lease_expires_at = ? where id = ?", at, repositoryId);
}

type Repo = { assetId: string; repositoryId: string; url: (hubUrl: string) => string };

async function createRepo(owner: Session, tenantId: string): Promise<Repo> {
  const api = client(hub.url);
  const name = uniqueName("repo");
  const asset = await api.ok<{ id: string }>("POST", `/api/tenants/${tenantId}/assets`, owner.token, {
    kind: "repo",
    name,
  });
  const secret = await api.gitToken(owner, tenantId, `asset:${asset.id}`);
  return {
    assetId: asset.id,
    repositoryId: `asset/${asset.id}`,
    url: (hubUrl) => `http://git:${secret}@${new URL(hubUrl).host}/api/tenants/${tenantId}/assets/repo/${name}.git`,
  };
}

/** A clone with one new commit of `megabytes` of incompressible files: its push takes the hub a while. */
async function cloneWithBigCommit(repo: Repo, megabytes: number): Promise<string> {
  const dir = join(work, uniqueName("big"));
  await git(work, "clone", "-q", repo.url(hub.url), dir);
  for (let i = 0; i < megabytes; i++) await writeFile(join(dir, `blob-${i}.bin`), randomBytes(1024 * 1024));
  await git(dir, "add", ".");
  await git(dir, "commit", "-q", "-m", `${megabytes} MB`);
  return dir;
}

let owner: Session;
let tenantId: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "agent-hub-git-lease-"));
  persistTo = join(work, "hub-state");
  await applyMigrations({ persistTo, quiet: true });
  hub = await startHub({
    port: await freePort(),
    persistTo,
    quiet: true,
    vars: noRateLimits,
    testScheduled: true,
    detached: true,
  });
  const api = client(hub.url);
  owner = await api.signUp("Lease Owner");
  tenantId = (await api.createTenant(owner)).id;
}, 120_000);

afterAll(async () => {
  await hub?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("the push lease", () => {
  it("takes the next push within 15 s of a hub killed mid-push, says why until then, and leaves no stray pack", async () => {
    const repo = await createRepo(owner, tenantId);
    const big = await cloneWithBigCommit(repo, 16);
    const tip = await git(big, "rev-parse", "HEAD");
    const small = join(work, uniqueName("small"));
    await git(work, "clone", "-q", repo.url(hub.url), small);
    await writeFile(join(small, "note.txt"), "small\n");
    await git(small, "add", ".");
    await git(small, "commit", "-q", "-m", "small");

    const pushing = spawn("git", ["push", "origin", "main"], { cwd: big, env: gitEnv(), stdio: "ignore" });
    await leaseHeld(repo.repositoryId);
    await hub.kill();
    pushing.kill("SIGKILL");
    await exited(pushing);

    // 1. While the dead push's lease runs, a push is refused with the reason and when to retry, in git's
    // words. (The hub is down, nothing else has its database open: the lease is stretched so that a slow
    // restart cannot let it run out before this push is made.)
    setLeaseExpiry(repo.repositoryId, Date.now() + 120_000);
    hub = await startHub({
      port: await freePort(),
      persistTo,
      quiet: true,
      vars: noRateLimits,
      testScheduled: true,
      detached: true,
    });
    const refused = await gitOutcome(small, "push", repo.url(hub.url), "HEAD:refs/heads/side");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /! \[remote rejected\] HEAD -> side \(another push to this repository is in progress; retry in \d+ s\)/,
    );

    // 2. The worst case of a real crash: the dead push renewed its lease just before the hub died, so it
    // runs for PUSH_LEASE_MS more. The next push must go through within 15 s of the restart.
    await hub.kill();
    setLeaseExpiry(repo.repositoryId, Date.now() + PUSH_LEASE_MS);
    hub = await startHub({
      port: await freePort(),
      persistTo,
      quiet: true,
      vars: noRateLimits,
      testScheduled: true,
      detached: true,
    });
    const restarted = Date.now();
    let accepted = false;
    while (!accepted && Date.now() - restarted < 30_000) {
      const attempt = await gitOutcome(big, "push", repo.url(hub.url), "main");
      if (attempt.code === 0) accepted = true;
      else {
        expect(attempt.stderr).toMatch(/another push to this repository is in progress; retry in \d+ s/);
        await sleep(500);
      }
    }
    expect(accepted).toBe(true);
    expect(Date.now() - restarted).toBeLessThan(15_000);

    const check = join(work, uniqueName("check"));
    await git(work, "clone", "-q", repo.url(hub.url), check);
    expect(await git(check, "rev-parse", "HEAD")).toBe(tip);
    await git(check, "fsck", "--full", "--strict");

    // The cleanup pass (the cron trigger, run on demand): every pack file in R2 is one the catalog names.
    const swept = await fetch(`${hub.url}/__scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
    expect(swept.status).toBe(200);
    const cataloged = new Set(
      d1Rows<{ id: string }>(persistTo, "select id from git_pack where repository_id = ?", repo.repositoryId).map(
        (r) => r.id,
      ),
    );
    const stored = r2Keys(persistTo, `git/${repo.repositoryId}/`);
    expect(stored.length).toBeGreaterThan(0);
    for (const key of stored) expect(cataloged).toContain(/pack-([0-9a-f]{40})\./.exec(key)?.[1]);
    const [row] = d1Rows<{ lease_token: string | null; sweep_requested_at: number | null }>(
      persistTo,
      "select lease_token, sweep_requested_at from git_repository where id = ?",
      repo.repositoryId,
    );
    expect(row).toEqual({ lease_token: null, sweep_requested_at: null });
  });
});
