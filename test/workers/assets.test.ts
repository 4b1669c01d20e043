/**
 * Assets over REST (create with a genesis commit, list, get, patch, delete, attach/detach) and the
 * smart-HTTP endpoints' answers to anonymous, malformed and random requests. Real git clients drive the
 * same endpoints in test/e2e/git.test.ts.
 */
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashObject, serializeCommit, serializeTag, serializeTree } from "../../src/git/objects/object";
import { bytes, pkt } from "../../src/git/protocol/test-support";
import { buildSmallPack, STANDARD_GITIGNORE } from "../../src/git/service/genesis";
import { concatBytes } from "../../src/lib/bytes";
import { bytesToHex } from "../../src/lib/hex";
import { addMember, api, createTenant, expectError, type TestTenant, unique } from "./support/api";

const assets = (t: TestTenant) => `/api/tenants/${t.id}/assets`;

async function createAsset(t: TestTenant, body: Record<string, unknown> = {}) {
  const res = await api(assets(t), { token: t.owner.token, body: { kind: "repo", name: unique("repo-"), ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; name: string; kind: string; cloneUrl: string };
}

async function createAgent(t: TestTenant) {
  const res = await api(`/api/tenants/${t.id}/agents/definitions`, { token: t.owner.token, body: { name: "Agent" } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

async function gitToken(t: TestTenant, assetId: string, actions = ["can_read", "can_push"], refPattern = "refs/**") {
  const res = await api("/api/me/git-tokens", {
    token: t.owner.token,
    body: {
      name: unique("tok"),
      tenantId: t.id,
      resource: `asset:${assetId}`,
      refPattern,
      actions,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.secret as string;
}

function git(
  url: string,
  secret: string | null,
  init: { method?: string; body?: Uint8Array; type?: string; protocol?: string } = {},
) {
  const headers = new Headers();
  if (secret) headers.set("authorization", `Basic ${btoa(`git:${secret}`)}`);
  if (init.type) headers.set("content-type", init.type);
  if (init.protocol) headers.set("git-protocol", init.protocol);
  return exports.default.fetch(
    new Request(`http://hub.test${url}`, { method: init.method ?? "GET", headers, body: init.body }),
  );
}

/** A git body as text (pkt-lines are ASCII), without the runtime's warning about non-text types. */
async function bodyText(res: Response): Promise<string> {
  return new TextDecoder().decode(await res.arrayBuffer());
}

/** One pkt-line and a flush. */
function pktLine(line: string): Uint8Array {
  return bytes(`${pkt(line)}0000`);
}

const rowCount = async (table: string, where: string, ...binds: unknown[]) =>
  (
    (await env.DB.prepare(`select count(*) as n from ${table} where ${where}`)
      .bind(...binds)
      .first()) as { n: number }
  ).n;

describe("assets", () => {
  it("creates a repository with a genesis commit on main", async () => {
    const t = await createTenant();
    const created = await createAsset(t, { kind: "skill", name: "greet", displayName: "Greetings" });
    expect(created).toMatchObject({
      kind: "skill",
      name: "greet",
      displayName: "Greetings",
      tenantId: t.id,
      cloneUrl: `/api/tenants/${t.id}/assets/skill/greet.git`,
    });
    expect(created.id).toMatch(/^ast_[0-9a-f]{32}$/);
    const refs = await env.DB.prepare("select name, oid from git_ref where repository_id = ?")
      .bind(`asset/${created.id}`)
      .all();
    expect(refs.results).toEqual([{ name: "refs/heads/main", oid: expect.stringMatching(/^[0-9a-f]{40}$/) }]);
    const packs = await env.BLOBS.list({ prefix: `git/asset/${created.id}/` });
    expect(packs.objects.map((o) => o.key.split(".").pop()).sort()).toEqual(["idx", "pack"]);
    expect(STANDARD_GITIGNORE).toContain("keys/");
  });

  it("lists, gets, renames and deletes, removing the repository and its packs", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const b = await createAsset(t, { kind: "skill" });
    const list = await api(`${assets(t)}?kind=skill`, { token: t.owner.token });
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([b.id]);
    expect((await api(`${assets(t)}/${a.id}`, { token: t.owner.token })).body.name).toBe(a.name);
    const patched = await api(`${assets(t)}/${a.id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { displayName: "Shown" },
    });
    expect(patched.body.displayName).toBe("Shown");

    expect((await api(`${assets(t)}/${a.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(`${assets(t)}/${a.id}`, { token: t.owner.token }), 404, "not_found");
    expect(await rowCount("git_repository", "id = ?", `asset/${a.id}`)).toBe(0);
    expect((await env.BLOBS.list({ prefix: `git/asset/${a.id}/` })).objects).toHaveLength(0);
  });

  it("refuses bad input without writing anything", async () => {
    const t = await createTenant();
    const before = await rowCount("asset", "tenant_id = ?", t.id);
    expectError(
      await api(assets(t), { token: t.owner.token, body: { kind: "nope", name: "x" } }),
      400,
      "validation_failed",
    );
    expectError(
      await api(assets(t), { token: t.owner.token, body: { kind: "repo", name: "Bad Name!" } }),
      400,
      "invalid_name",
    );
    expectError(
      await api(assets(t), { token: t.owner.token, body: { kind: "agent-state", name: "x" } }),
      400,
      "unsupported_kind",
    );
    expectError(await api(assets(t), { token: t.owner.token, body: { kind: "repo" } }), 400, "validation_failed");
    expectError(await api(`${assets(t)}?kind=bad`, { token: t.owner.token }), 400, "validation_failed");
    expect(await rowCount("asset", "tenant_id = ?", t.id)).toBe(before);
    const dup = await createAsset(t);
    expectError(
      await api(assets(t), { token: t.owner.token, body: { kind: "repo", name: dup.name } }),
      409,
      "duplicate_asset",
    );
    expect(await rowCount("asset", "tenant_id = ?", t.id)).toBe(before + 1);
  });

  it("needs the grants: a member can read but not create, change or delete", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const member = await addMember(t, "member");
    expect((await api(`${assets(t)}/${a.id}`, { token: member.token })).status).toBe(200);
    const before = await rowCount("asset", "tenant_id = ?", t.id);
    expectError(await api(assets(t), { token: member.token, body: { kind: "repo", name: "mine" } }), 403, "forbidden");
    expectError(
      await api(`${assets(t)}/${a.id}`, { method: "PATCH", token: member.token, body: { displayName: "x" } }),
      403,
      "forbidden",
    );
    expectError(await api(`${assets(t)}/${a.id}`, { method: "DELETE", token: member.token }), 403, "forbidden");
    expect(await rowCount("asset", "tenant_id = ?", t.id)).toBe(before);
  });

  it("hides another tenant's assets and repositories", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const a = await createAsset(t);
    for (const [method, path] of [
      ["GET", `${assets(t)}/${a.id}`],
      ["DELETE", `${assets(t)}/${a.id}`],
      ["GET", assets(t)],
    ] as const) {
      expectError(await api(path, { method, token: other.owner.token }), 404, "not_found");
    }
    // Through their own tenant the id does not resolve either.
    expectError(await api(`${assets(other)}/${a.id}`, { token: other.owner.token }), 404, "not_found");
    // Their token for their own asset does not open this repository.
    const theirs = await createAsset(other);
    const secret = await gitToken(other, theirs.id);
    const res = await git(`${a.cloneUrl}/info/refs?service=git-upload-pack`, secret);
    expect(res.status).toBe(403);
  });

  it("attaches and detaches assets to agent definitions", async () => {
    const t = await createTenant();
    const a = await createAsset(t, { kind: "skill" });
    const agentId = await createAgent(t);
    const path = `/api/tenants/${t.id}/agents/definitions/${agentId}/assets`;
    const attached = await api(path, { token: t.owner.token, body: { assetId: a.id, accessMode: "read-write" } });
    expect(attached.status, JSON.stringify(attached.body)).toBe(201);
    expect(attached.body).toMatchObject({ agentId, assetId: a.id, ref: "refs/heads/main", accessMode: "read-write" });
    expectError(await api(path, { token: t.owner.token, body: { assetId: a.id } }), 409, "conflict");
    expectError(await api(path, { token: t.owner.token, body: { assetId: "ast_nope" } }), 404, "not_found");
    expectError(
      await api(path, { token: t.owner.token, body: { assetId: a.id, ref: "main" } }),
      400,
      "validation_failed",
    );
    expect((await api(path, { token: t.owner.token })).body.data.map((x: { assetId: string }) => x.assetId)).toEqual([
      a.id,
    ]);

    const member = await addMember(t, "member");
    expectError(await api(`${path}/${a.id}`, { method: "DELETE", token: member.token }), 403, "forbidden");
    const other = await createTenant();
    expectError(await api(path, { token: other.owner.token }), 404, "not_found");

    expect((await api(`${path}/${a.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(`${path}/${a.id}`, { method: "DELETE", token: t.owner.token }), 404, "not_found");
    expect((await api(path, { token: t.owner.token })).body.data).toEqual([]);
  });
});

describe("smart HTTP endpoints", () => {
  it("challenges anonymous requests with Basic", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    for (const [method, suffix] of [
      ["GET", "/info/refs?service=git-upload-pack"],
      ["POST", "/git-upload-pack"],
      ["POST", "/git-receive-pack"],
    ] as const) {
      const res = await git(`${a.cloneUrl}${suffix}`, null, { method });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic /);
    }
  });

  it("advertises refs with HEAD and exactly the implemented capabilities", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const secret = await gitToken(t, a.id);
    const res = await git(`${a.cloneUrl}/info/refs?service=git-upload-pack`, secret);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-git-upload-pack-advertisement");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const text = await bodyText(res);
    expect(text.startsWith("001e# service=git-upload-pack\n0000")).toBe(true);
    expect(text).toMatch(/[0-9a-f]{40} HEAD\0.*multi_ack_detailed.*symref=HEAD:refs\/heads\/main/);
    expect(text).toContain(" refs/heads/main\n");

    const bad = await git(`${a.cloneUrl}/info/refs?service=git-nope`, secret);
    expect(bad.status).toBe(400);
    const readOnly = await gitToken(t, a.id, ["can_read"]);
    const push = await git(`${a.cloneUrl}/git-receive-pack`, readOnly, { method: "POST", body: new Uint8Array() });
    expect(push.status).toBe(403);
    expect(
      (await git(`/api/tenants/${t.id}/assets/nope/${a.name}.git/info/refs?service=git-upload-pack`, secret)).status,
    ).toBe(404);
  });

  it("protocol v2: capability advertisement, ls-refs within the token's ref pattern, 400 for bad requests", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const secret = await gitToken(t, a.id);
    const v2 = { protocol: "version=2" };
    const adv = await git(`${a.cloneUrl}/info/refs?service=git-upload-pack`, secret, v2);
    expect(adv.status).toBe(200);
    expect(adv.headers.get("content-type")).toBe("application/x-git-upload-pack-advertisement");
    const advText = await bodyText(adv);
    expect(advText.startsWith("000eversion 2\n")).toBe(true);
    expect(advText).toContain("ls-refs=unborn\n");
    expect(advText).toContain("fetch=shallow filter\n");
    // Pushes stay v0 whatever the client asks.
    const push = await git(`${a.cloneUrl}/info/refs?service=git-receive-pack`, secret, v2);
    expect((await bodyText(push)).startsWith("001f# service=git-receive-pack\n")).toBe(true);

    const request = (...lines: string[]) =>
      bytes(lines.map((l) => (l === "0000" || l === "0001" ? l : pkt(l))).join(""));
    const lsRefs = request("command=ls-refs\n", "0001", "symrefs\n", "unborn\n", "0000");
    const post = (token: string, body: Uint8Array) =>
      git(`${a.cloneUrl}/git-upload-pack`, token, { method: "POST", body, ...v2 });
    const listed = await post(secret, lsRefs);
    expect(listed.status).toBe(200);
    expect(listed.headers.get("content-type")).toBe("application/x-git-upload-pack-result");
    expect(await bodyText(listed)).toMatch(
      /^[0-9a-f]{4}[0-9a-f]{40} HEAD symref-target:refs\/heads\/main\n[0-9a-f]{4}[0-9a-f]{40} refs\/heads\/main\n0000$/,
    );
    const featuresOnly = await gitToken(t, a.id, ["can_read"], "refs/heads/feature/*");
    const hidden = await post(featuresOnly, lsRefs);
    expect(await bodyText(hidden)).toBe("0000");

    for (const bad of [
      request("command=push\n", "0000"),
      request("command=fetch\n", "0001", "want nope\n", "0000"),
      request("command=fetch\n", "0001", "want-ref refs/heads/main\n", "0000"),
      request("command=ls-refs\n", "0001", "bogus\n", "0000"),
      request("command=ls-refs\n", "0001"),
    ]) {
      const res = await post(secret, bad);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_git_request");
    }
  });

  it("receive-pack: the exact report, refused refs in request order, and atomic pushes all or nothing", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const refs = async () =>
      (
        await env.DB.prepare("select name, oid from git_ref where repository_id = ? order by name")
          .bind(`asset/${a.id}`)
          .all<{ name: string; oid: string }>()
      ).results;
    const [main] = await refs();
    const genesis = main?.oid as string;
    // One new commit on top of the genesis, in a pack of its three objects.
    const blob = new TextEncoder().encode("hello\n");
    const tree = serializeTree([{ mode: "100644", name: "hello.txt", oid: hashObject("blob", blob) }]);
    const who = { name: "T", email: "t@example.test", timestamp: 1_700_000_000, timezone: "+0000" };
    const commit = serializeCommit({
      tree: hashObject("tree", tree),
      parents: [genesis],
      author: who,
      committer: who,
      extraHeaders: [],
      message: "hello\n",
    });
    const tip = hashObject("commit", commit);
    const { pack } = await buildSmallPack([
      { type: "commit", body: commit },
      { type: "tree", body: tree },
      { type: "blob", body: blob },
    ]);
    const push = async (token: string, commands: string[], caps: string) => {
      const head = commands.map((c, i) => pkt(i === 0 ? `${c}\0${caps}\n` : `${c}\n`)).join("");
      const body = concatBytes([bytes(`${head}0000`), pack]);
      const res = await git(`${a.cloneUrl}/git-receive-pack`, token, {
        method: "POST",
        body,
        type: "application/x-git-receive-pack-request",
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-git-receive-pack-result");
      return bodyText(res);
    };
    const limited = await gitToken(t, a.id, ["can_read", "can_push"], "refs/heads/main");
    const zero = "0".repeat(40);

    // Atomic: one ref outside the pattern refuses both, and nothing moves.
    const atomic = await push(
      limited,
      [`${genesis} ${tip} refs/heads/main`, `${zero} ${tip} refs/heads/other`],
      "report-status atomic",
    );
    expect(atomic).toBe(
      `${pkt("unpack ok\n")}${pkt("ng refs/heads/main atomic push failed\n")}` +
        `${pkt("ng refs/heads/other forbidden by the token's ref pattern\n")}0000`,
    );
    expect(await refs()).toEqual([{ name: "refs/heads/main", oid: genesis }]);

    // Not atomic: the allowed ref moves, the other is refused, in request order.
    const mixed = await push(
      limited,
      [`${zero} ${tip} refs/heads/other`, `${genesis} ${tip} refs/heads/main`],
      "report-status",
    );
    expect(mixed).toBe(
      `${pkt("unpack ok\n")}${pkt("ng refs/heads/other forbidden by the token's ref pattern\n")}` +
        `${pkt("ok refs/heads/main\n")}0000`,
    );
    expect(await refs()).toEqual([{ name: "refs/heads/main", oid: tip }]);

    // A stale old value is refused as git's server does; the exact single-ref report.
    const full = await gitToken(t, a.id);
    const stale = await push(full, [`${genesis} ${tip} refs/heads/main`], "report-status");
    expect(stale).toBe(`${pkt("unpack ok\n")}${pkt("ng refs/heads/main stale info\n")}0000`);
    const created = await push(full, [`${zero} ${tip} refs/heads/copy`], "report-status");
    expect(created).toBe("000eunpack ok\n0017ok refs/heads/copy\n0000");
  });

  it("keeps what each pushed ref peels to, so advertisements read no tag objects", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const rows = async () =>
      (
        await env.DB.prepare("select name, oid, peeled from git_ref where repository_id = ? order by name")
          .bind(`asset/${a.id}`)
          .all<{ name: string; oid: string; peeled: string | null }>()
      ).results;
    const genesis = (await rows())[0]?.oid as string;
    const who = { name: "T", email: "t@example.test", timestamp: 1_700_000_000, timezone: "+0000" };
    const tree = serializeTree([]);
    const commit = serializeCommit({
      tree: hashObject("tree", tree),
      parents: [genesis],
      author: who,
      committer: who,
      extraHeaders: [],
      message: "release\n",
    });
    const tip = hashObject("commit", commit);
    const tag = serializeTag({
      object: tip,
      type: "commit",
      tag: "v1",
      tagger: who,
      extraHeaders: [],
      message: "v1\n",
    });
    const v1 = hashObject("tag", tag);
    // A tag of a tag: it peels through both to the commit.
    const outer = serializeTag({
      object: v1,
      type: "tag",
      tag: "v1-signed",
      tagger: who,
      extraHeaders: [],
      message: "x\n",
    });
    const v1Signed = hashObject("tag", outer);
    const { pack } = await buildSmallPack([
      { type: "commit", body: commit },
      { type: "tree", body: tree },
      { type: "tag", body: tag },
      { type: "tag", body: outer },
    ]);
    const zero = "0".repeat(40);
    const commands = [
      `${genesis} ${tip} refs/heads/main`,
      `${zero} ${v1} refs/tags/v1`,
      `${zero} ${v1Signed} refs/tags/v1-signed`,
      `${zero} ${tip} refs/tags/light`,
    ];
    const head = commands.map((c, i) => pkt(i === 0 ? `${c}\0report-status\n` : `${c}\n`)).join("");
    const res = await git(`${a.cloneUrl}/git-receive-pack`, await gitToken(t, a.id), {
      method: "POST",
      body: concatBytes([bytes(`${head}0000`), pack]),
      type: "application/x-git-receive-pack-request",
    });
    expect(await bodyText(res)).toContain("ok refs/tags/v1-signed");
    expect(await rows()).toEqual([
      { name: "refs/heads/main", oid: tip, peeled: tip },
      { name: "refs/tags/light", oid: tip, peeled: tip },
      { name: "refs/tags/v1", oid: v1, peeled: tip },
      { name: "refs/tags/v1-signed", oid: v1Signed, peeled: tip },
    ]);
    const advertised = await bodyText(
      await git(`${a.cloneUrl}/info/refs?service=git-upload-pack`, await gitToken(t, a.id)),
    );
    expect(advertised).toContain(`${tip} refs/tags/v1^{}`);
    expect(advertised).toContain(`${tip} refs/tags/v1-signed^{}`);
    expect(advertised).not.toContain("refs/tags/light^{}");
  });

  it("answers random and truncated request bodies with a client error, never a 500, and moves no ref", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const secret = await gitToken(t, a.id);
    const refsBefore = await env.DB.prepare("select name, oid from git_ref where repository_id = ?")
      .bind(`asset/${a.id}`)
      .all();
    const valid = new TextEncoder().encode(
      `00a40000000000000000000000000000000000000000 ${"1".repeat(40)} refs/heads/x\0report-status side-band-64k\n0000PACK`,
    );
    let seed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.integer({ min: 0, max: valid.length }).map((n) => valid.subarray(0, n)),
          fc.string({ maxLength: 200 }).map((s) => new TextEncoder().encode(s)),
        ),
        fc.constantFrom("git-upload-pack", "git-receive-pack"),
        fc.constantFrom(undefined, "version=2"),
        async (body, service, protocol) => {
          seed++;
          const res = await git(`${a.cloneUrl}/${service}`, secret, {
            method: "POST",
            body,
            type: `application/x-${service}-request`,
            protocol,
          });
          await res.arrayBuffer();
          expect(res.status, `${service} body ${Array.from(body).join(",")}`).not.toBe(500);
          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
    expect(seed).toBeGreaterThan(0);
    const refsAfter = await env.DB.prepare("select name, oid from git_ref where repository_id = ?")
      .bind(`asset/${a.id}`)
      .all();
    expect(refsAfter.results).toEqual(refsBefore.results);
  });

  it("refuses a push while another holds the repository's lease, in a report git prints, with when to retry", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const secret = await gitToken(t, a.id);
    await env.DB.prepare("update git_repository set lease_token = 'held', lease_expires_at = ? where id = ?")
      .bind(Date.now() + 8_000, `asset/${a.id}`)
      .run();
    const res = await git(`${a.cloneUrl}/git-receive-pack`, secret, {
      method: "POST",
      body: pktLine(`${"1".repeat(40)} ${"0".repeat(40)} refs/heads/gone\0report-status delete-refs\n`),
      type: "application/x-git-receive-pack-request",
    });
    // git only reads a report from a 200; each ref is refused with the reason it shows the user.
    expect(res.status).toBe(200);
    const report = await bodyText(res);
    expect(report).toMatch(
      /^000eunpack ok\n[0-9a-f]{4}ng refs\/heads\/gone another push to this repository is in progress; retry in [78] s\n0000$/,
    );
    const rows = await env.DB.prepare("select lease_token from git_repository where id = ?")
      .bind(`asset/${a.id}`)
      .first<{ lease_token: string }>();
    expect(rows?.lease_token).toBe("held");
  });

  it("takes over an expired lease at once and marks the repository for the cleanup pass", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const secret = await gitToken(t, a.id);
    // A push that died holding the lease: it stopped renewing, and the lease ran out.
    await env.DB.prepare("update git_repository set lease_token = 'dead', lease_expires_at = ? where id = ?")
      .bind(Date.now() - 1, `asset/${a.id}`)
      .run();
    const res = await git(`${a.cloneUrl}/git-receive-pack`, secret, {
      method: "POST",
      body: pktLine(`${"1".repeat(40)} ${"0".repeat(40)} refs/heads/gone\0report-status delete-refs\n`),
      type: "application/x-git-receive-pack-request",
    });
    expect(await bodyText(res)).toContain("ng refs/heads/gone stale info");
    const row = await env.DB.prepare("select lease_token, sweep_requested_at from git_repository where id = ?")
      .bind(`asset/${a.id}`)
      .first<{ lease_token: string | null; sweep_requested_at: number | null }>();
    expect(row?.lease_token).toBeNull();
    expect(row?.sweep_requested_at).toBeGreaterThan(Date.now() - 60_000);
  });
});

/** A commit on top of main with one blob, as a push body: commands, flush, pack. */
async function pushBody(genesis: string, blob: Uint8Array, oldOid = genesis) {
  const tree = serializeTree([{ mode: "100644", name: "data.bin", oid: hashObject("blob", blob) }]);
  const who = { name: "T", email: "t@example.test", timestamp: 1_700_000_000, timezone: "+0000" };
  const commit = serializeCommit({
    tree: hashObject("tree", tree),
    parents: [genesis],
    author: who,
    committer: who,
    extraHeaders: [],
    message: "data\n",
  });
  const { pack } = await buildSmallPack([
    { type: "commit", body: commit },
    { type: "tree", body: tree },
    { type: "blob", body: blob },
  ]);
  const command = pkt(`${oldOid} ${hashObject("commit", commit)} refs/heads/main\0report-status\n`);
  return { tip: hashObject("commit", commit), pack, head: bytes(`${command}0000`) };
}

describe("streamed pushes", () => {
  /** The pack files of a repository in R2, and the packs its catalog names. */
  async function storedAndCataloged(repositoryId: string) {
    const listed = await env.BLOBS.list({ prefix: `git/${repositoryId}/` });
    const catalog = await env.DB.prepare("select id, pack_bytes from git_pack where repository_id = ?")
      .bind(repositoryId)
      .all<{ id: string; pack_bytes: number }>();
    return { keys: listed.objects.map((o) => o.key).sort(), packs: catalog.results, sizes: listed.objects };
  }

  async function mainOf(repositoryId: string) {
    return (
      await env.DB.prepare("select oid from git_ref where repository_id = ? and name = 'refs/heads/main'")
        .bind(repositoryId)
        .first<{ oid: string }>()
    )?.oid as string;
  }

  it("writes a pack larger than one storage part as it arrives, catalogs it and serves its objects", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const repositoryId = `asset/${a.id}`;
    const genesis = await mainOf(repositoryId);
    // Incompressible, so the pack is over one 8 MiB part and goes up as a multipart upload.
    const blob = new Uint8Array(9 * 1024 * 1024);
    for (let at = 0; at < blob.length; at += 65_536) crypto.getRandomValues(blob.subarray(at, at + 65_536));
    const { tip, pack, head } = await pushBody(genesis, blob);
    // Sent as many small chunks, as a client streams it.
    const body = concatBytes([head, pack]);
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= body.length) return controller.close();
        controller.enqueue(body.slice(at, at + 100_000));
        at += 100_000;
      },
    });
    const res = await exports.default.fetch(
      new Request(`http://hub.test${a.cloneUrl}/git-receive-pack`, {
        method: "POST",
        headers: {
          authorization: `Basic ${btoa(`git:${await gitToken(t, a.id)}`)}`,
          "content-type": "application/x-git-receive-pack-request",
        },
        body: stream,
        duplex: "half",
      } as RequestInit),
    );
    expect(await bodyText(res)).toBe(`000eunpack ok\n0017ok refs/heads/main\n0000`);
    expect(await mainOf(repositoryId)).toBe(tip);
    const { keys, packs, sizes } = await storedAndCataloged(repositoryId);
    expect(keys).toHaveLength(packs.length * 2);
    const pushed = packs.find((p) => p.pack_bytes === pack.length);
    expect(pushed).toBeDefined();
    expect(sizes.find((o) => o.key.endsWith(`pack-${pushed?.id}.pack`))?.size).toBe(pack.length);
    // The stored pack is the pushed one, byte for byte.
    const stored = await env.BLOBS.get(`git/${repositoryId}/pack-${pushed?.id}.pack`);
    const digest = async (data: BufferSource) => bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-1", data)));
    expect(await digest((await stored?.arrayBuffer()) as ArrayBuffer)).toBe(await digest(pack));
  });

  it("deletes what a refused push wrote: a stale ref, a damaged pack, a missing object", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const repositoryId = `asset/${a.id}`;
    const genesis = await mainOf(repositoryId);
    const secret = await gitToken(t, a.id);
    const before = await storedAndCataloged(repositoryId);
    const send = async (body: Uint8Array) =>
      bodyText(
        await git(`${a.cloneUrl}/git-receive-pack`, secret, {
          method: "POST",
          body,
          type: "application/x-git-receive-pack-request",
        }),
      );

    const stale = await pushBody(genesis, new TextEncoder().encode("stale\n"), "1".repeat(40));
    expect(await send(concatBytes([stale.head, stale.pack]))).toContain("ng refs/heads/main stale info");

    const damaged = await pushBody(genesis, new TextEncoder().encode("damaged\n"));
    const cut = damaged.pack.slice(0, damaged.pack.length - 30);
    expect(await send(concatBytes([damaged.head, cut]))).toMatch(
      /^[0-9a-f]{4}unpack pack entry data at \d+: truncated/,
    );

    // A commit whose parent is nowhere: the pack indexes, connectivity refuses it.
    const orphan = await pushBody("2".repeat(40), new TextEncoder().encode("orphan\n"), genesis);
    expect(await send(concatBytes([orphan.head, orphan.pack]))).toMatch(/unpack missing object 2{40}/);

    expect(await storedAndCataloged(repositoryId)).toEqual(before);
    expect(await mainOf(repositoryId)).toBe(genesis);
  });
});

describe("compaction", () => {
  it("merges a repository's packs after pushes, keeps every object readable, and the cleanup pass removes the old files", async () => {
    const t = await createTenant();
    const a = await createAsset(t);
    const repositoryId = `asset/${a.id}`;
    const secret = await gitToken(t, a.id);
    const packIds = async () =>
      (
        await env.DB.prepare("select id from git_pack where repository_id = ?").bind(repositoryId).all<{ id: string }>()
      ).results.map((r) => r.id);
    let tip = (
      await env.DB.prepare("select oid from git_ref where repository_id = ? and name = 'refs/heads/main'")
        .bind(repositoryId)
        .first<{ oid: string }>()
    )?.oid as string;
    const blobs: Uint8Array[] = [];
    // The genesis pack and three pushed ones: the third push's answer sets off the compaction.
    for (let i = 0; i < 3; i++) {
      const blob = new TextEncoder().encode(`version ${i}\n`.repeat(200));
      blobs.push(blob);
      const next = await pushBody(tip, blob);
      const res = await git(`${a.cloneUrl}/git-receive-pack`, secret, {
        method: "POST",
        body: concatBytes([next.head, next.pack]),
        type: "application/x-git-receive-pack-request",
      });
      expect(await bodyText(res)).toContain("ok refs/heads/main");
      tip = next.tip;
    }
    let packs = await packIds();
    for (let i = 0; i < 100 && packs.length > 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      packs = await packIds();
    }
    expect(packs).toHaveLength(1);

    // A clone (v0, every ref) gets the one pack, and it holds the whole history.
    const clone = await git(`${a.cloneUrl}/git-upload-pack`, secret, {
      method: "POST",
      body: bytes(`${pkt(`want ${tip} ofs-delta\n`)}0000${pkt("done\n")}`),
      type: "application/x-git-upload-pack-request",
    });
    const answer = new Uint8Array(await clone.arrayBuffer());
    const { indexPack } = await import("../../src/git/pack/reader");
    const start = answer.indexOf(0x50); // "PACK" after the NAK line
    const indexed = await indexPack(answer.subarray(start));
    const ids = new Set(indexed.entries.map((e) => e.oid));
    expect(ids).toContain(tip);
    for (const blob of blobs) expect(ids).toContain(hashObject("blob", blob));

    // The replaced packs' files go on the next cleanup pass; the compacted pack stays.
    const { sweepOrphanPacks } = await import("../../src/git/service/sweep");
    const { getDb } = await import("../../src/db/client");
    await sweepOrphanPacks(getDb(env), env.BLOBS);
    const keys = (await env.BLOBS.list({ prefix: `git/${repositoryId}/` })).objects.map((o) => o.key).sort();
    expect(keys).toEqual([`git/${repositoryId}/pack-${packs[0]}.idx`, `git/${repositoryId}/pack-${packs[0]}.pack`]);
  });
});
