/**
 * Agent state in git, on the hub's side: the deploy tree and attached skills shipped at launch, state
 * pushes over the instance channel (applied, or refused with nothing moved), the state read back over
 * REST, restore, and the read-only smart HTTP of `state.git`.
 */
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stateRepositoryId } from "../../src/agent-state/repositories";
import { getDb } from "../../src/db/client";
import { gitPack, gitRef, gitRepository, sessionAsset } from "../../src/db/schema";
import { parseCommit, parseTree } from "../../src/git/objects/object";
import { commitOnRef } from "../../src/git/service/hub-commit";
import { hubSigningKey } from "../../src/secrets/hub-signing-key";
import { api, createTenant, expectError, unique } from "./support/api";
import { createAgent, launch, ok, type Runtime, SLOW, setUpRuntime, tenantBase } from "./support/runtime";
import { objectsOf, pushState, receivedPacks, stateCommit } from "./support/state-packs";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

const db = getDb(env);
const encoder = new TextEncoder();
const SKILL = "---\nname: summarize\ndescription: Summarize a long text & keep it short\n---\n\nRead, then write.\n";

const refsOf = (repositoryId: string) => db.select().from(gitRef).where(eq(gitRef.repositoryId, repositoryId));
const packsOf = (repositoryId: string) => db.select().from(gitPack).where(eq(gitPack.repositoryId, repositoryId));

async function gitTokenFor(token: string, tenantId: string, resource: string) {
  const res = await api("/api/me/git-tokens", {
    token,
    body: {
      name: unique("tok"),
      tenantId,
      resource,
      refPattern: "refs/**",
      actions: ["can_read"],
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.secret as string;
}

/** A smart-HTTP request; the body comes back as text (pkt-lines are ASCII). */
async function gitRequest(url: string, secret: string | null, init: { method?: string; body?: Uint8Array } = {}) {
  const headers = new Headers();
  if (secret) headers.set("authorization", `Basic ${btoa(`git:${secret}`)}`);
  const res = await exports.default.fetch(
    new Request(`http://hub.test${url}`, { method: init.method ?? "GET", headers, body: init.body }),
  );
  return { status: res.status, headers: res.headers, body: new TextDecoder().decode(await res.arrayBuffer()) };
}

describe("agent state", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let instanceId: string;
  let channel: TestInstanceChannel;
  let skillAssetId: string;
  const data = (path: string) => `${tenantBase(r.t.id)}/agents/${instanceId}${path}`;

  beforeAll(async () => {
    r = await setUpRuntime();
    const skill = await ok(`${tenantBase(r.t.id)}/assets`, r.token, { kind: "skill", name: unique("notes-") });
    skillAssetId = skill.id;
    // The skill's content, committed as a push would leave it.
    await commitOnRef(db, env.BLOBS, {
      repositoryId: `asset/${skill.id}`,
      tenantId: r.t.id,
      ref: "refs/heads/main",
      message: "Add the summarize skill",
      key: await hubSigningKey((env as unknown as Env).SECRETS_KEY),
      content: { files: new Map([["summarize/SKILL.md", encoder.encode(SKILL)]]) },
    });
    await ok(`${tenantBase(r.t.id)}/agents/definitions/${r.agentId}/assets`, r.token, { assetId: skill.id });
    sidecar = await TestSidecar.connect(r.secret);
    const launched = await launch(r, sidecar);
    instanceId = launched.instance.id;
    channel = launched.channel;
    await channel.log.next("session.start");
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("ships the deploy tree and the attached skill before session.start; the prompt lists the skill", async () => {
    const deploy = await channel.log.next("agent.deploy");
    const skillName = (await ok(`${tenantBase(r.t.id)}/assets/${skillAssetId}`, r.token)).name;
    expect(deploy.config.systemPrompt).toContain(
      `<available_skills>\n<skill>\n<name>${skillName}/summarize</name>\n` +
        "<description>Summarize a long text &amp; keep it short</description>\n" +
        `<path>workspace/skills/${skillName}/summarize/</path>\n</skill>\n</available_skills>`,
    );
    const types = channel.log.frames.map((f) => f.type);
    expect(types.lastIndexOf("repo.pack.done")).toBeLessThan(types.indexOf("session.start"));

    const [deployPack, skillPack] = receivedPacks(channel.log.frames);
    expect(deployPack?.done).toMatchObject({
      repoId: { kind: "agent-state", id: r.agentId },
      ref: "refs/heads/deploy",
    });
    const deployObjects = await objectsOf(deployPack?.pack as Uint8Array);
    const commit = parseCommit(deployObjects.get(deployPack?.done.commitSha)?.body as Uint8Array);
    expect(commit.extraHeaders.map((h) => h.name)).toContain("gpgsig");
    const root = parseTree(deployObjects.get(commit.tree)?.body as Uint8Array);
    expect(root.map((e) => e.name)).toEqual(["deploy"]);
    const files = parseTree(deployObjects.get(root[0]?.oid as string)?.body as Uint8Array);
    const prompt = new TextDecoder().decode(
      deployObjects.get(files.find((f) => f.name === "prompt.md")?.oid ?? "")?.body,
    );
    expect(prompt).toBe(deploy.config.systemPrompt);

    expect(skillPack?.done).toMatchObject({
      repoId: { kind: "skill", id: skillAssetId },
      ref: "refs/heads/main",
      mountPath: `skills/${skillName}/`,
    });
    // The sidecar took the skill: the session records which version it got.
    channel.send({ type: "repo.pack.ack", agentAddress: channel.agentAddress, transferId: skillPack?.done.transferId });
    await channel.settled();
    const [row] = await db.select().from(sessionAsset).where(eq(sessionAsset.instanceId, instanceId));
    expect(row).toMatchObject({ sourceCommitSha: skillPack?.done.commitSha, mountPath: `skills/${skillName}/` });
    expect(row?.assetPackSha).toMatch(/^[0-9a-f]{64}$/);

    // The definition's repository holds the same deploy commit on refs/heads/deploy.
    expect(await refsOf(stateRepositoryId(r.agentId))).toEqual([
      expect.objectContaining({ name: "refs/heads/deploy", oid: deployPack?.done.commitSha }),
    ]);
  });

  it("ships the packs again to a sidecar that comes back without the deploy commit, not to one that has it", async () => {
    const shipped = (from: number) => channel.log.frames.slice(from).filter((f) => f.type === "repo.pack.done");
    let from = channel.log.frames.length;
    channel.drop();
    await channel.reconnect();
    await channel.settled();
    expect(shipped(from)).toEqual([]);
    from = channel.log.frames.length;
    const kept = channel.deployRef;
    channel.deployRef = null;
    channel.drop();
    await channel.reconnect();
    await channel.settled();
    expect(shipped(from).map((f) => f.ref)).toEqual(["refs/heads/deploy", "refs/heads/main"]);
    expect(channel.deployRef).toBe(kept);
  });

  it("reads as empty before the first push: no files, no history, an empty clone", async () => {
    expect(await ok(data("/data"), r.token)).toEqual({ data: [], nextCursor: null });
    expect(await ok(data("/history"), r.token)).toEqual({ data: [], nextCursor: null });
    expect(await ok(data("/branches"), r.token)).toEqual({ data: [] });
    const secret = await gitTokenFor(r.token, r.t.id, `agent-state:${instanceId}`);
    const res = await gitRequest(
      `${tenantBase(r.t.id)}/agents/instances/${instanceId}/state.git/info/refs?service=git-upload-pack`,
      secret,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-git-upload-pack-advertisement");
    expect(String(res.body)).toContain("capabilities^{}");
  });

  it("refuses a forbidden entry, a stale expected id, a missing chunk and a tip not in the pack, moving nothing", async () => {
    const bad = await stateCommit({ "turns.jsonl": "", "secrets.txt": "no" });
    const refused = await pushState(channel, bad.pack, { commitSha: bad.commitSha, expectedOldSha: null });
    expect(refused).toMatchObject({ type: "repo.pack.reject", reason: "path_violation", currentSha: null });
    expect(refused.message).toContain('"secrets.txt"');

    const only = await stateCommit({ ".gitignore": "*.log\n" });
    expect(await pushState(channel, only.pack, { commitSha: only.commitSha, expectedOldSha: null })).toMatchObject({
      reason: "path_violation",
    });
    const good = await stateCommit({ "turns.jsonl": "", "metadata.json": "{}" });
    const stale = await pushState(channel, good.pack, { commitSha: good.commitSha, expectedOldSha: "1".repeat(40) });
    expect(stale).toMatchObject({ reason: "non_fast_forward", currentSha: null });
    const gap = await pushState(
      channel,
      good.pack,
      { commitSha: good.commitSha, expectedOldSha: null },
      { chunkBytes: 64, skipSeq: 1 },
    );
    expect(gap).toMatchObject({ reason: "corrupt" });
    const counted = await pushState(
      channel,
      good.pack,
      { commitSha: good.commitSha, expectedOldSha: null },
      { chunks: 9 },
    );
    expect(counted).toMatchObject({ reason: "corrupt" });
    const elsewhere = await pushState(channel, good.pack, { commitSha: bad.commitSha, expectedOldSha: null });
    expect(elsewhere).toMatchObject({ reason: "sha_mismatch" });
    const deploy = await pushState(channel, good.pack, {
      commitSha: good.commitSha,
      expectedOldSha: null,
      ref: "refs/heads/deploy",
    });
    expect(deploy).toMatchObject({ reason: "path_violation" });

    // Nothing moved and nothing was left: no repository row, no ref, no pack.
    const repositoryId = stateRepositoryId(instanceId);
    expect(await db.select().from(gitRepository).where(eq(gitRepository.id, repositoryId))).toEqual([]);
    expect(await refsOf(repositoryId)).toEqual([]);
    expect(await packsOf(repositoryId)).toEqual([]);
    expect((await env.BLOBS.list({ prefix: `git/${repositoryId}/` })).objects).toEqual([]);
  });

  it("applies a chunked state push; REST shows its files, history, commit changes and branches", async () => {
    const turns = [
      { role: "user", content: [{ type: "text", text: "hello" }], timestamp: 1_700_000_000_000 },
      { role: "assistant", content: [{ type: "text", text: "hello back" }], timestamp: 1_700_000_001_000 },
    ];
    const first = await stateCommit(
      { "turns.jsonl": `${JSON.stringify(turns[0])}\n`, "metadata.json": "{}\n" },
      { message: "checkpoint: tool-execution", time: 1_700_000_000 },
    );
    // Small chunks: the pack arrives in many frames.
    const acked = await pushState(
      channel,
      first.pack,
      { commitSha: first.commitSha, expectedOldSha: null },
      { chunkBytes: 100 },
    );
    expect(acked).toMatchObject({ type: "repo.pack.ack", ref: "refs/heads/main", commitSha: first.commitSha });

    const second = await stateCommit(
      {
        "turns.jsonl": `${turns.map((t) => JSON.stringify(t)).join("\n")}\n`,
        "state/mail/0badcafe/0001-in.eml": "Message-ID: <m1@test>\r\n\r\nhello\r\n",
        "tool-output/call_1.bin": "\u0000\u0001binary",
      },
      { parents: [first.commitSha], message: "checkpoint: inference-done", time: 1_700_000_002 },
    );
    const again = await pushState(channel, second.pack, {
      commitSha: second.commitSha,
      expectedOldSha: first.commitSha,
    });
    expect(again).toMatchObject({ type: "repo.pack.ack", commitSha: second.commitSha });

    const files = await ok(data("/data"), r.token);
    expect(files.data.map((f: { path: string; type: string }) => `${f.type}:${f.path}`)).toEqual([
      "directory:state",
      "directory:state/mail",
      "directory:state/mail/0badcafe",
      "file:state/mail/0badcafe/0001-in.eml",
      "directory:tool-output",
      "file:tool-output/call_1.bin",
      "file:turns.jsonl",
    ]);
    const paged = await ok(data("/data?limit=2"), r.token);
    expect(paged.data).toHaveLength(2);
    const rest = await ok(data(`/data?limit=10&cursor=${paged.nextCursor}`), r.token);
    expect([...paged.data, ...rest.data]).toEqual(files.data);
    expect((await ok(data("/data?path=state/mail"), r.token)).data).toHaveLength(2);

    expect(await ok(data("/data/turns.jsonl"), r.token)).toEqual({
      path: "turns.jsonl",
      content: `${turns.map((t) => JSON.stringify(t)).join("\n")}\n`,
      encoding: "utf-8",
    });
    expect(await ok(data("/data/state/mail/0badcafe/0001-in.eml"), r.token)).toMatchObject({ encoding: "utf-8" });
    const binary = await ok(data("/data/tool-output/call_1.bin"), r.token);
    expect(binary.encoding).toBe("base64");
    expect(atob(binary.content)).toBe("\u0000\u0001binary");
    expect(await ok(data(`/data/turns.jsonl?ref=${first.commitSha}`), r.token)).toMatchObject({
      content: `${JSON.stringify(turns[0])}\n`,
    });

    const history = await ok(data("/history"), r.token);
    expect(
      history.data.map((h: { ref: string; message: string; filesChanged: number }) => [
        h.ref,
        h.message,
        h.filesChanged,
      ]),
    ).toEqual([
      [second.commitSha, "checkpoint: inference-done", 4],
      [first.commitSha, "checkpoint: tool-execution", 2],
    ]);
    const one = await ok(data("/history?limit=1"), r.token);
    expect(one.data[0].ref).toBe(second.commitSha);
    expect((await ok(data(`/history?limit=1&cursor=${one.nextCursor}`), r.token)).data[0].ref).toBe(first.commitSha);

    const detail = await ok(data(`/history/${second.commitSha}`), r.token);
    expect(detail).toMatchObject({ ref: second.commitSha, parents: [first.commitSha], author: "agent <agent@test>" });
    expect(detail.changes).toEqual([
      { path: "metadata.json", status: "deleted", additions: 0, deletions: 1 },
      { path: "state/mail/0badcafe/0001-in.eml", status: "added", additions: 3, deletions: 0 },
      { path: "tool-output/call_1.bin", status: "added" },
      { path: "turns.jsonl", status: "modified", additions: 1, deletions: 0 },
    ]);
    expect(await ok(data("/branches"), r.token)).toEqual({
      data: [
        {
          name: "main",
          isCurrent: true,
          lastCommitRef: second.commitSha,
          lastCommitMessage: "checkpoint: inference-done",
          lastCommitAt: new Date(1_700_000_002_000).toISOString(),
        },
      ],
    });
  });

  it("restores an earlier tree as a new hub commit and sends it to the running instance", async () => {
    const before = (await ok(data("/history"), r.token)).data;
    const target = before[before.length - 1];
    const from = channel.log.frames.length;
    const res = await api(data(`/history/${target.ref}/restore`), { token: r.token, body: {} });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ branch: "refs/heads/main", instanceNotified: true });
    const detail = await ok(data(`/history/${res.body.ref}`), r.token);
    expect(detail.parents).toEqual([before[0].ref]);
    expect(detail.message).toBe(`Restore ${target.ref}`);
    expect(detail.author).toBe("agent-hub <hub@agent-hub.local>");
    const restoredTree = parseCommit(
      (await objectsOf(receivedPacks(channel.log.frames.slice(from))[0]?.pack as Uint8Array)).get(res.body.ref)
        ?.body as Uint8Array,
    ).tree;
    expect(restoredTree).toBe(res.body.tree);
    expect((await ok(data("/data/turns.jsonl"), r.token)).content).toBe(
      (await ok(data(`/data/turns.jsonl?ref=${target.ref}`), r.token)).content,
    );
    const done = await channel.log.next("repo.pack.done", from);
    expect(done).toMatchObject({
      repoId: { kind: "agent-state", id: instanceId },
      ref: "refs/heads/main",
      commitSha: res.body.ref,
    });
  });

  it("answers bad input with 4xx in the envelope", async () => {
    expectError(await api(data("/history/refs-heads-nope"), { token: r.token }), 404, "not_found");
    expectError(await api(data(`/history/${"0".repeat(40)}`), { token: r.token }), 404, "not_found");
    expectError(await api(data("/data/no/such/file.txt"), { token: r.token }), 404, "not_found");
    expectError(await api(data("/data?path=nowhere"), { token: r.token }), 404, "not_found");
    expectError(await api(data("/history?cursor=%%%"), { token: r.token }), 400, "invalid_cursor");
    expectError(await api(data("/history?limit=0"), { token: r.token }), 400, "validation_failed");
    expectError(
      await api(data("/history/main/restore"), { token: r.token, body: { branch: 7 } }),
      400,
      "validation_failed",
    );
    expectError(
      await api(data("/history/main/restore"), { token: r.token, body: { branch: "nope" } }),
      404,
      "not_found",
    );
    expectError(await api(`${tenantBase(r.t.id)}/agents/ins_nope/data`, { token: r.token }), 404, "not_found");
  });

  it("refuses pushes to state.git with the read-only answer, with or without a token", async () => {
    const base = `${tenantBase(r.t.id)}/agents/instances/${instanceId}/state.git`;
    const advert = await gitRequest(`${base}/info/refs?service=git-receive-pack`, null);
    expect(advert.status).toBe(403);
    expect(advert.headers.get("content-type")).toBe("application/x-git-receive-pack-advertisement");
    expect(String(advert.body)).toBe("# service=git-receive-pack\n0000ERR agent-state is read-only over HTTP\n");
    const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, "0")}${line}`;
    const zero = "0".repeat(40);
    const body = encoder.encode(`${pkt(`${zero} ${"a".repeat(40)} refs/heads/main\0report-status\n`)}0000`);
    const push = await gitRequest(`${base}/git-receive-pack`, null, { method: "POST", body });
    expect(push.status).toBe(200);
    expect(String(push.body)).toBe(
      `${pkt("unpack agent-state-readonly\n")}${pkt("ng refs/heads/main agent-state-readonly\n")}0000`,
    );
    const garbage = await gitRequest(`${base}/git-receive-pack`, null, { method: "POST", body: encoder.encode("zz") });
    expect(String(garbage.body)).toBe(`${pkt("unpack agent-state-readonly\n")}0000`);
  });

  it("shows another tenant's caller nothing: 404 on every route and git path", async () => {
    const other = await createTenant();
    const theirs = (path: string) => `${tenantBase(other.id)}/agents/${instanceId}${path}`;
    for (const path of ["/data", "/data/turns.jsonl", "/history", `/history/main`, "/branches"]) {
      expectError(await api(theirs(path), { token: other.owner.token }), 404, "not_found");
    }
    expectError(await api(theirs("/history/main/restore"), { token: other.owner.token, body: {} }), 404, "not_found");
    expectError(
      await api(`${tenantBase(other.id)}/agents/instances/${instanceId}/timeline`, { token: other.owner.token }),
      404,
      "not_found",
    );
    // Their own tenant's URL with our token: the tenant is not theirs to read.
    expectError(await api(data("/data"), { token: other.owner.token }), 404, "not_found");
    const secret = await gitTokenFor(other.owner.token, other.id, `agent-state:${instanceId}`).catch(() => null);
    expect(secret).toBeNull();
    // Their own token, on their tenant's URL, naming our instance: 404.
    const theirAgent = await createAgent({ t: other, token: other.owner.token });
    const theirToken = await gitTokenFor(other.owner.token, other.id, `agent-state:${theirAgent.id}`);
    const probe = await gitRequest(
      `${tenantBase(other.id)}/agents/instances/${instanceId}/state.git/info/refs?service=git-upload-pack`,
      theirToken,
    );
    expect(probe.status).toBe(404);
    expect(JSON.parse(probe.body).error.code).toBe("not_found");
    // Our token on their URL is refused before anything is looked up.
    const mine = await gitTokenFor(r.token, r.t.id, `agent-state:${instanceId}`);
    const res = await gitRequest(
      `${tenantBase(other.id)}/agents/instances/${instanceId}/state.git/info/refs?service=git-upload-pack`,
      mine,
    );
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe("tenant_mismatch");
  });
});
