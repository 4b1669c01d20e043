/**
 * The git token middleware mounted on a small app with real D1; tokens are minted through the real API.
 * The app's handler echoes what the middleware put in the context.
 */
import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { asset, gitToken } from "../../src/db/schema";
import type { AppEnv } from "../../src/http/context";
import { handleError } from "../../src/http/error-envelope";
import { GIT_REALM, gitTokenAuth, secretFromAuthorization } from "../../src/http/middleware/git-token";
import { newId } from "../../src/lib/ids";
import { sha256 } from "../../src/lib/secret-digest";
import { type ApiResponse, addMember, api, createTenant, type TestTenant, unique } from "./support/api";

const app = new Hono<AppEnv>();
app.use("*", requestId());
app.all(
  "/t/:tenantId/assets/:assetId/repo.git/*",
  gitTokenAuth({
    resourceOf: async (c) => {
      const id = c.req.param("assetId") ?? "";
      const [row] = await getDb(c.env)
        .select({ id: asset.id })
        .from(asset)
        .where(and(eq(asset.id, id), eq(asset.tenantId, c.get("tenant").id)));
      return row ? `asset:${row.id}` : null;
    },
  }),
  (c) =>
    c.json({
      tenantId: c.get("tenant").id,
      principalId: c.get("principal").id,
      grants: c.get("grants").length,
      gitToken: c.get("gitToken"),
    }),
);
app.onError(handleError);

type Auth = { basic: string; user?: string } | { bearer: string } | { header: string } | null;

async function git(tenantId: string, assetId: string, op: "refs" | "push-refs" | "fetch" | "push", auth: Auth) {
  const headers = new Headers();
  if (auth && "basic" in auth) headers.set("authorization", `Basic ${btoa(`${auth.user ?? "git"}:${auth.basic}`)}`);
  if (auth && "bearer" in auth) headers.set("authorization", `Bearer ${auth.bearer}`);
  if (auth && "header" in auth) headers.set("authorization", auth.header);
  const base = `http://hub.test/t/${tenantId}/assets/${assetId}/repo.git`;
  const request = {
    refs: new Request(`${base}/info/refs?service=git-upload-pack`, { headers }),
    "push-refs": new Request(`${base}/info/refs?service=git-receive-pack`, { headers }),
    fetch: new Request(`${base}/git-upload-pack`, { method: "POST", headers, body: "0000" }),
    push: new Request(`${base}/git-receive-pack`, { method: "POST", headers, body: "0000" }),
  }[op];
  const res = await app.request(request, undefined, env);
  return { status: res.status, headers: res.headers, body: (await res.json()) as ApiResponse["body"] };
}

async function insertAsset(t: TestTenant): Promise<string> {
  const id = newId("asset");
  await getDb(env)
    .insert(asset)
    .values({ id, tenantId: t.id, kind: "skill", name: unique("skill-") });
  return id;
}

async function mint(
  token: string,
  assetId: string,
  extra: Record<string, unknown> = {},
  path = "/api/me/git-tokens",
): Promise<{ id: string; secret: string }> {
  const res = await api(path, {
    token,
    body: {
      name: unique("token-"),
      resource: `asset:${assetId}`,
      refPattern: "refs/heads/*",
      actions: ["can_read"],
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      ...extra,
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function setup() {
  const t = await createTenant();
  const assetId = await insertAsset(t);
  const reader = await mint(t.owner.token, assetId);
  return { t, assetId, reader };
}

function expectChallenge(res: Awaited<ReturnType<typeof git>>, code = "unauthorized") {
  expect({ status: res.status, code: res.body.error?.code }).toEqual({ status: 401, code });
  expect(res.headers.get("www-authenticate")).toBe(`Basic realm="${GIT_REALM}", charset="UTF-8"`);
}

describe("git token middleware", () => {
  it("accepts the token as a Basic password (any username) or as a Bearer token, and fills the context", async () => {
    const { t, assetId, reader } = await setup();
    const basic = await git(t.id, assetId, "refs", { basic: reader.secret, user: "whoever" });
    expect(basic.status, JSON.stringify(basic.body)).toBe(200);
    expect(basic.body).toMatchObject({
      tenantId: t.id,
      principalId: t.ownerPrincipalId,
      gitToken: {
        id: reader.id,
        kind: "pat",
        userId: t.owner.userId,
        resource: `asset:${assetId}`,
        refPattern: "refs/heads/*",
        actions: ["createPack", "resolveRef"],
        action: "resolveRef",
      },
    });
    expect(basic.body.grants).toBeGreaterThan(0);
    const other = await git(t.id, assetId, "refs", { basic: reader.secret, user: "someone-else" });
    expect(other.status).toBe(200);

    const bearer = await git(t.id, assetId, "fetch", { bearer: reader.secret });
    expect(bearer.status).toBe(200);
    expect(bearer.body.gitToken.action).toBe("createPack");
    const lowercase = await git(t.id, assetId, "fetch", { header: `bearer ${reader.secret}` });
    expect(lowercase.status).toBe(200);
  });

  it("challenges missing, malformed and unknown credentials with 401 and WWW-Authenticate", async () => {
    const { t, assetId, reader } = await setup();
    expectChallenge(await git(t.id, assetId, "refs", null));
    expectChallenge(await git(t.id, assetId, "refs", { header: "Basic" }));
    expectChallenge(await git(t.id, assetId, "refs", { header: reader.secret }));
    expectChallenge(await git(t.id, assetId, "refs", { header: `Token ${reader.secret}` }));
    expectChallenge(await git(t.id, assetId, "refs", { header: "Basic !!not-base64!!" }));
    expectChallenge(await git(t.id, assetId, "refs", { header: `Basic ${btoa(reader.secret)}` }));
    expectChallenge(await git(t.id, assetId, "refs", { basic: "" }));
    expectChallenge(await git(t.id, assetId, "refs", { bearer: reader.secret.slice(4) }));
    // Well-formed but unknown: the same answer, whether or not a token exists.
    expectChallenge(await git(t.id, assetId, "refs", { bearer: `itx_pat_${"A".repeat(43)}` }));
    expectChallenge(await git(t.id, assetId, "refs", { basic: `${reader.secret}x` }));
  });

  it("refuses revoked and expired tokens with 401 so git forgets them", async () => {
    const { t, assetId, reader } = await setup();
    const revoked = await mint(t.owner.token, assetId);
    expect((await api(`/api/me/git-tokens/${revoked.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(
      204,
    );
    expectChallenge(await git(t.id, assetId, "refs", { basic: revoked.secret }), "token_revoked");

    // The mint refuses a past expiry, so the clock is moved for this token only.
    await getDb(env)
      .update(gitToken)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(gitToken.id, reader.id));
    expectChallenge(await git(t.id, assetId, "refs", { basic: reader.secret }), "token_expired");
  });

  it("binds the token to its tenant and to the one repository it names", async () => {
    const { t, reader } = await setup();
    const other = await createTenant(t.owner);
    const otherAsset = await insertAsset(other);
    const wrongTenant = await git(other.id, otherAsset, "refs", { basic: reader.secret });
    expect({ status: wrongTenant.status, code: wrongTenant.body.error.code }).toEqual({
      status: 403,
      code: "tenant_mismatch",
    });
    // The owner may read every asset of the tenant, but this token opens only the one it names.
    const sibling = await insertAsset(t);
    const wrongRepo = await git(t.id, sibling, "refs", { basic: reader.secret });
    expect({ status: wrongRepo.status, code: wrongRepo.body.error.code }).toEqual({
      status: 403,
      code: "resource_mismatch",
    });
    const missing = await git(t.id, newId("asset"), "refs", { basic: reader.secret });
    expect(missing.status).toBe(403);
  });

  it("allows only the token's actions: a read-only token cannot push", async () => {
    const { t, assetId, reader } = await setup();
    const push = await git(t.id, assetId, "push", { basic: reader.secret });
    expect({ status: push.status, code: push.body.error.code }).toEqual({ status: 403, code: "forbidden" });
    expect(push.body.error.message).toMatch(/receivePack/);
    // Advertising refs for a push is a read (resolveRef); the push itself is refused above.
    expect((await git(t.id, assetId, "push-refs", { basic: reader.secret })).status).toBe(200);

    const pusher = await mint(t.owner.token, assetId, { actions: ["can_push"] });
    const pushed = await git(t.id, assetId, "push", { basic: pusher.secret });
    expect(pushed.status).toBe(200);
    expect(pushed.body.gitToken.action).toBe("receivePack");
    expect((await git(t.id, assetId, "fetch", { basic: pusher.secret })).status).toBe(403);

    const badService = await app.request(
      `http://hub.test/t/${t.id}/assets/${assetId}/repo.git/info/refs?service=git-archive`,
      { headers: { authorization: `Bearer ${reader.secret}` } },
      env,
    );
    expect(badService.status).toBe(400);
  });

  it("re-checks the principal's grants and status on every use", async () => {
    const { t, assetId } = await setup();
    const member = await addMember(t, "member");
    const token = await mint(member.token, assetId);
    const ok = await git(t.id, assetId, "refs", { basic: token.secret });
    expect(ok.body.principalId).toBe(member.principalId);

    const unassign = await api(`/api/tenants/${t.id}/principals/${member.principalId}/roles/${t.roles.member}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expect(unassign.status).toBe(204);
    const lost = await git(t.id, assetId, "refs", { basic: token.secret });
    expect({ status: lost.status, code: lost.body.error.code }).toEqual({ status: 403, code: "forbidden" });

    const reassign = await api(`/api/tenants/${t.id}/principals/${member.principalId}/roles/${t.roles.member}`, {
      method: "POST",
      token: t.owner.token,
    });
    expect(reassign.status).toBe(204);
    expect((await git(t.id, assetId, "refs", { basic: token.secret })).status).toBe(200);
    const suspend = await api(`/api/tenants/${t.id}/principals/${member.principalId}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { status: "suspended" },
    });
    expect(suspend.status).toBe(200);
    const suspended = await git(t.id, assetId, "refs", { basic: token.secret });
    expect({ status: suspended.status, code: suspended.body.error.code }).toEqual({
      status: 403,
      code: "principal_suspended",
    });
  });

  it("refuses a personal token once its user is no longer a member of the tenant: 403 principal_not_found", async () => {
    const { t, assetId } = await setup();
    const member = await addMember(t, "member");
    const token = await mint(member.token, assetId);
    expect((await git(t.id, assetId, "refs", { basic: token.secret })).status).toBe(200);
    const removed = await api(`/api/tenants/${t.id}/principals/${member.principalId}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expect(removed.status).toBe(204);
    const res = await git(t.id, assetId, "refs", { basic: token.secret });
    expect({ status: res.status, code: res.body.error?.code }).toEqual({ status: 403, code: "principal_not_found" });
  });

  it("acts as the minting principal for tenant tokens", async () => {
    const { t, assetId } = await setup();
    const svc = await mint(
      t.owner.token,
      assetId,
      { actions: ["can_read", "can_push"] },
      `/api/tenants/${t.id}/git-tokens`,
    );
    const res = await git(t.id, assetId, "push", { bearer: svc.secret });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      principalId: t.ownerPrincipalId,
      gitToken: { kind: "svc", action: "receivePack" },
    });
  });

  it("finds the token by the SHA-256 of the secret exactly as sent on the wire", async () => {
    const { reader } = await setup();
    const [row] = await getDb(env).select().from(gitToken).where(eq(gitToken.id, reader.id));
    expect([...new Uint8Array(row?.tokenHash ?? [])]).toEqual([...(await sha256(reader.secret))]);
    expect(secretFromAuthorization(`Basic ${btoa(`x:${reader.secret}`)}`)).toBe(reader.secret);
    expect(secretFromAuthorization(`BEARER ${reader.secret}`)).toBe(reader.secret);
    expect(secretFromAuthorization(`Basic ${btoa("user:pa:ss")}`)).toBe("pa:ss");
    expect(secretFromAuthorization("Basic")).toBeNull();
    expect(secretFromAuthorization(undefined)).toBeNull();
  });
});
