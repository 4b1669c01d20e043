/**
 * The cleanup pass over git storage: pack files in R2 that no catalog row names (left by a push that died
 * or lost its lease) are deleted; cataloged packs never are; a repository a live push holds waits.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { sweepOrphanPacks } from "../../src/git/service/sweep";
import { indexKey, packKey } from "../../src/git/storage/pack-files";
import worker from "../../src/index";
import { api, createTenant, type TestTenant, unique } from "./support/api";

async function repository(t: TestTenant): Promise<string> {
  const res = await api(`/api/tenants/${t.id}/assets`, {
    token: t.owner.token,
    body: { kind: "repo", name: unique("r-") },
  });
  expect(res.status).toBe(201);
  return `asset/${res.body.id}`;
}

const randomPackId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16).padStart(2, "0")).join("");

/** Pack files as a push writes them before its catalog row: in R2 only. */
async function orphan(repositoryId: string): Promise<string> {
  const id = randomPackId();
  await env.BLOBS.put(packKey(repositoryId, id), new Uint8Array([80, 65, 67, 75]));
  await env.BLOBS.put(indexKey(repositoryId, id), new Uint8Array([255, 116, 79, 99]));
  return id;
}

const keys = async (repositoryId: string) =>
  (await env.BLOBS.list({ prefix: `git/${repositoryId}/` })).objects.map((o) => o.key).sort();

const state = (repositoryId: string) =>
  env.DB.prepare("select lease_token, sweep_requested_at from git_repository where id = ?")
    .bind(repositoryId)
    .first<{ lease_token: string | null; sweep_requested_at: number | null }>();

const setLease = (repositoryId: string, token: string, expiresAt: number) =>
  env.DB.prepare("update git_repository set lease_token = ?, lease_expires_at = ? where id = ?")
    .bind(token, expiresAt, repositoryId)
    .run();

describe("sweeping orphan packs", () => {
  it("deletes the files of packs the catalog does not name, keeps the cataloged ones, and clears the mark", async () => {
    const t = await createTenant();
    const repo = await repository(t);
    const genesis = await keys(repo);
    expect(genesis).toHaveLength(2); // the genesis pack and its index, cataloged
    const left = await orphan(repo);
    await env.DB.prepare("update git_repository set sweep_requested_at = ? where id = ?").bind(Date.now(), repo).run();

    const report = await sweepOrphanPacks(getDb(env), env.BLOBS);
    expect(report.swept).toContain(repo);
    expect(report.deleted).toContain(`${repo}:${left}`);
    expect(await keys(repo)).toEqual(genesis);
    expect(await state(repo)).toEqual({ lease_token: null, sweep_requested_at: null });
  });

  it("sweeps a repository whose lease expired held (a dead push), unmarked", async () => {
    const t = await createTenant();
    const repo = await repository(t);
    const genesis = await keys(repo);
    await orphan(repo);
    await setLease(repo, "dead-push", Date.now() - 1_000);
    const report = await sweepOrphanPacks(getDb(env), env.BLOBS);
    expect(report.swept).toContain(repo);
    expect(await keys(repo)).toEqual(genesis);
    expect(await state(repo)).toEqual({ lease_token: null, sweep_requested_at: null });
  });

  it("never touches a repository a live push holds: it waits for the next pass", async () => {
    const t = await createTenant();
    const repo = await repository(t);
    const inFlight = await orphan(repo); // what a live push has written so far
    await env.DB.prepare("update git_repository set sweep_requested_at = ? where id = ?").bind(Date.now(), repo).run();
    await setLease(repo, "live-push", Date.now() + 60_000);
    const report = await sweepOrphanPacks(getDb(env), env.BLOBS);
    expect(report.busy).toContain(repo);
    expect(report.deleted.filter((d) => d.startsWith(repo))).toEqual([]);
    expect(await keys(repo)).toContain(packKey(repo, inFlight));
    expect((await state(repo))?.lease_token).toBe("live-push");

    // Once the push is gone (its lease lapsed), the next pass sweeps.
    await setLease(repo, "live-push", Date.now() - 1);
    await sweepOrphanPacks(getDb(env), env.BLOBS);
    expect(await keys(repo)).not.toContain(packKey(repo, inFlight));
  });

  it("runs from the Worker's scheduled handler (the cron trigger)", async () => {
    const t = await createTenant();
    const repo = await repository(t);
    const genesis = await keys(repo);
    await orphan(repo);
    await env.DB.prepare("update git_repository set sweep_requested_at = ? where id = ?").bind(Date.now(), repo).run();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await keys(repo)).toEqual(genesis);
  });
});
