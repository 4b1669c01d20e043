/** Git tokens over HTTP: minting (personal and tenant), the secret shown once, listing, revocation, limits. */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { agent, asset, gitToken } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { sha256 } from "../../src/lib/secret-digest";
import { addMember, api, createTenant, expectError, signUp, type TestTenant, unique } from "./support/api";

const inADay = () => new Date(Date.now() + 86_400_000).toISOString();

/** Asset rows are inserted directly: the asset routes are separate work; only the row matters here. */
async function insertAsset(t: TestTenant): Promise<string> {
  const id = newId("asset");
  await getDb(env)
    .insert(asset)
    .values({ id, tenantId: t.id, kind: "skill", name: unique("skill-") });
  return id;
}

const mintBody = (assetId: string, extra: Record<string, unknown> = {}) => ({
  name: unique("token-"),
  resource: `asset:${assetId}`,
  refPattern: "refs/heads/**",
  actions: ["can_read"],
  expiresAt: inADay(),
  ...extra,
});

const storedRow = async (id: string) =>
  (await getDb(env).select().from(gitToken).where(eq(gitToken.id, id)).limit(1))[0];
const rowsOfUser = async (userId: string) => getDb(env).select().from(gitToken).where(eq(gitToken.userId, userId));

describe("personal git tokens", () => {
  it("mints a token bound to the repository's tenant; the secret is shown once and stored only as SHA-256", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const body = mintBody(assetId, { actions: ["can_read", "resolveRef"] });
    const res = await api("/api/me/git-tokens", { token: t.owner.token, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^gtk_[0-9a-f]{32}$/),
      secret: expect.stringMatching(/^itx_pat_[A-Za-z0-9_-]{43}$/),
      name: body.name,
      kind: "pat",
      claims: {
        resource: `asset:${assetId}`,
        refPattern: "refs/heads/**",
        actions: ["createPack", "resolveRef"],
        expiresAt: body.expiresAt,
      },
    });
    const secret: string = res.body.secret;

    const row = await storedRow(res.body.id);
    expect(row).toMatchObject({ kind: "pat", tenantId: t.id, userId: t.owner.userId, principalId: null });
    expect(row?.actions).toEqual(["createPack", "resolveRef"]);
    expect([...new Uint8Array(row?.tokenHash ?? [])]).toEqual([...(await sha256(secret))]);
    const { tokenHash: _hash, ...columns } = row ?? {};
    expect(JSON.stringify(columns)).not.toContain(secret.slice(8));

    const list = await api("/api/me/git-tokens", { token: t.owner.token });
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([
      {
        id: res.body.id,
        userId: t.owner.userId,
        principalId: null,
        tenantId: t.id,
        name: body.name,
        kind: "pat",
        resource: `asset:${assetId}`,
        refPattern: "refs/heads/**",
        actions: ["createPack", "resolveRef"],
        expiresAt: body.expiresAt,
        revokedAt: null,
        createdAt: expect.any(String),
      },
    ]);
    expect(JSON.stringify(list.body)).not.toContain(secret.slice(8));
    expect(list.body.nextCursor).toBeNull();
  });

  it("accepts the repository's tenant as tenantId and hides repositories of other tenants", async () => {
    const t = await createTenant();
    const mine = await createTenant(t.owner);
    const assetId = await insertAsset(t);
    const ok = await api("/api/me/git-tokens", { token: t.owner.token, body: mintBody(assetId, { tenantId: t.id }) });
    expect(ok.status).toBe(201);
    expect((await storedRow(ok.body.id))?.tenantId).toBe(t.id);

    const wrongTenant = mintBody(assetId, { tenantId: mine.id });
    expectError(await api("/api/me/git-tokens", { token: t.owner.token, body: wrongTenant }), 404, "not_found");
    const outsider = await signUp("Outsider");
    expectError(await api("/api/me/git-tokens", { token: outsider.token, body: mintBody(assetId) }), 404, "not_found");
    const unknown = mintBody(newId("asset"));
    expectError(await api("/api/me/git-tokens", { token: t.owner.token, body: unknown }), 404, "not_found");
    expect(await rowsOfUser(outsider.userId)).toEqual([]);
  });

  it("names agent-state repositories too, bound to the definition's tenant", async () => {
    const t = await createTenant();
    const agentId = newId("agent");
    await getDb(env)
      .insert(agent)
      .values({ id: agentId, tenantId: t.id, creatorPrincipalId: t.ownerPrincipalId, name: "a" });
    const res = await api("/api/me/git-tokens", {
      token: t.owner.token,
      body: mintBody("x", { resource: `agent-state:${agentId}` }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.claims.resource).toBe(`agent-state:${agentId}`);
    expect((await storedRow(res.body.id))?.tenantId).toBe(t.id);
    const unknown = mintBody("x", { resource: `agent-state:${newId("instance")}` });
    expectError(await api("/api/me/git-tokens", { token: t.owner.token, body: unknown }), 404, "not_found");
  });

  it("cannot carry more than the user holds on the repository", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const member = await addMember(t, "member"); // read on everything, no write
    const push = await api("/api/me/git-tokens", {
      token: member.token,
      body: mintBody(assetId, { actions: ["can_push"] }),
    });
    expect(expectError(push, 403, "forbidden").message).toMatch(/write on asset:/);
    expect(await rowsOfUser(member.userId)).toEqual([]);
    const read = await api("/api/me/git-tokens", { token: member.token, body: mintBody(assetId) });
    expect(read.status).toBe(201);

    const noRole = await addMember(t, null);
    expectError(await api("/api/me/git-tokens", { token: noRole.token, body: mintBody(assetId) }), 403, "forbidden");
  });

  it("rejects invalid claims with 400 and stores nothing", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const mint = (extra: Record<string, unknown>) =>
      api("/api/me/git-tokens", { token: t.owner.token, body: mintBody(assetId, extra) });
    expectError(await mint({ refPattern: "" }), 400, "invalid_ref_pattern");
    expectError(await mint({ refPattern: "refs/heads/[ab]" }), 400, "invalid_ref_pattern");
    expectError(await mint({ refPattern: "refs/heads/ main" }), 400, "invalid_ref_pattern");
    expectError(await mint({ actions: [] }), 400, "invalid_action");
    expectError(await mint({ actions: ["init"] }), 400, "validation_failed");
    expectError(await mint({ actions: ["can_read", "writeTree"] }), 400, "validation_failed");
    expectError(await mint({ expiresAt: new Date(Date.now() + 30_000).toISOString() }), 400, "invalid_expires_at");
    expectError(await mint({ expiresAt: "2020-01-01T00:00:00.000Z" }), 400, "invalid_expires_at");
    expectError(await mint({ expiresAt: "next week" }), 400, "invalid_expires_at");
    expectError(await mint({ resource: "asset:*" }), 400, "invalid_resource");
    expectError(await mint({ resource: "agent:agt_1" }), 400, "invalid_resource");
    expectError(await mint({ name: "" }), 400, "validation_failed");
    expectError(await mint({ actions: "can_read" }), 400, "validation_failed");
    expect(await rowsOfUser(t.owner.userId)).toEqual([]);
  });

  it("keeps active names unique per user (409) and frees a name on revocation", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const body = mintBody(assetId);
    const first = await api("/api/me/git-tokens", { token: t.owner.token, body });
    expect(first.status).toBe(201);
    expectError(await api("/api/me/git-tokens", { token: t.owner.token, body }), 409, "conflict");
    await api(`/api/me/git-tokens/${first.body.id}`, { method: "DELETE", token: t.owner.token });
    expect((await api("/api/me/git-tokens", { token: t.owner.token, body })).status).toBe(201);
  });

  it("revokes the owner's token idempotently; other users get 403 and see nothing", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const minted = await api("/api/me/git-tokens", { token: t.owner.token, body: mintBody(assetId) });
    const other = await signUp("Other");

    expect((await api("/api/me/git-tokens", { token: other.token })).body).toEqual({ data: [], nextCursor: null });
    const stolen = await api(`/api/me/git-tokens/${minted.body.id}`, { method: "DELETE", token: other.token });
    expectError(stolen, 403, "forbidden");
    expect((await storedRow(minted.body.id))?.revokedAt).toBeNull();

    const revoked = await api(`/api/me/git-tokens/${minted.body.id}`, { method: "DELETE", token: t.owner.token });
    expect(revoked.status).toBe(204);
    const revokedAt = (await storedRow(minted.body.id))?.revokedAt;
    expect(revokedAt).toBeInstanceOf(Date);
    const again = await api(`/api/me/git-tokens/${minted.body.id}`, { method: "DELETE", token: t.owner.token });
    expect(again.status).toBe(204);
    expect((await storedRow(minted.body.id))?.revokedAt).toEqual(revokedAt);
    const list = await api("/api/me/git-tokens", { token: t.owner.token });
    expect(list.body.data[0]).toMatchObject({ id: minted.body.id, revokedAt: revokedAt?.toISOString() });

    const unknown = await api(`/api/me/git-tokens/${newId("gitToken")}`, { method: "DELETE", token: t.owner.token });
    expectError(unknown, 404, "not_found");
  });

  it("pages the user's tokens and requires a signed-in user", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    for (let i = 0; i < 3; i++) await api("/api/me/git-tokens", { token: t.owner.token, body: mintBody(assetId) });
    const first = await api("/api/me/git-tokens?limit=2", { token: t.owner.token });
    expect(first.body.data).toHaveLength(2);
    const second = await api(`/api/me/git-tokens?limit=2&cursor=${first.body.nextCursor}`, { token: t.owner.token });
    expect(second.body.data).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    expectError(await api("/api/me/git-tokens?cursor=garbage!", { token: t.owner.token }), 400, "invalid_cursor");
    expectError(await api("/api/me/git-tokens"), 401, "unauthorized");
    expectError(await api("/api/me/git-tokens", { body: mintBody(assetId) }), 401, "unauthorized");
  });
});

describe("tenant git tokens", () => {
  it("mints a service token acting as the caller's principal, listed with the tenant's personal tokens", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const res = await api(`/api/tenants/${t.id}/git-tokens`, {
      token: t.owner.token,
      body: mintBody(assetId, { actions: ["can_push"] }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ kind: "svc", claims: { actions: ["receivePack"] } });
    expect(res.body.secret).toMatch(/^itx_svc_[A-Za-z0-9_-]{43}$/);
    const row = await storedRow(res.body.id);
    expect(row).toMatchObject({
      kind: "svc",
      tenantId: t.id,
      principalId: t.ownerPrincipalId,
      userId: t.owner.userId,
      actions: ["receivePack"],
    });
    expect([...new Uint8Array(row?.tokenHash ?? [])]).toEqual([...(await sha256(res.body.secret))]);

    const member = await addMember(t, "member");
    const personal = await api("/api/me/git-tokens", { token: member.token, body: mintBody(assetId) });
    const list = await api(`/api/tenants/${t.id}/git-tokens`, { token: member.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([personal.body.id, res.body.id]);
    expect(list.body.data[1]).toMatchObject({ kind: "svc", principalId: t.ownerPrincipalId, tenantId: t.id });
    expect(JSON.stringify(list.body)).not.toContain(res.body.secret.slice(8));
    expect(JSON.stringify(list.body)).not.toMatch(/tokenHash|secret/);
  });

  it("validates like the personal mint and needs git-token:* create plus the repository grants", async () => {
    const t = await createTenant();
    const assetId = await insertAsset(t);
    const mint = (token: string, extra: Record<string, unknown> = {}) =>
      api(`/api/tenants/${t.id}/git-tokens`, { token, body: mintBody(assetId, extra) });
    expectError(await mint(t.owner.token, { refPattern: "" }), 400, "invalid_ref_pattern");
    expectError(await mint(t.owner.token, { actions: [] }), 400, "invalid_action");
    expectError(await mint(t.owner.token, { expiresAt: new Date().toISOString() }), 400, "invalid_expires_at");
    const other = await createTenant(t.owner);
    const foreignAsset = await insertAsset(other);
    expectError(await mint(t.owner.token, { resource: `asset:${foreignAsset}` }), 404, "not_found");

    const member = await addMember(t, "member");
    expectError(await mint(member.token), 403, "forbidden");
    // With git-token:* create, a reader still cannot mint a push token.
    const grant = await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { principalId: member.principalId, resource: "git-token:*", action: "create", effect: "allow" },
    });
    expect(grant.status).toBe(201);
    const push = await mint(member.token, { actions: ["can_push"] });
    expect(expectError(push, 403, "forbidden").message).toMatch(/write on asset:/);
    expect(await rowsOfUser(member.userId)).toEqual([]);
    expect((await mint(member.token)).status).toBe(201);
  });

  it("revokes tokens of the tenant only; other tenants' users and tokens are 404", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const assetId = await insertAsset(t);
    const minted = await api(`/api/tenants/${t.id}/git-tokens`, { token: t.owner.token, body: mintBody(assetId) });
    const foreign = await api(`/api/tenants/${other.id}/git-tokens`, {
      token: other.owner.token,
      body: mintBody(await insertAsset(other)),
    });
    expect(foreign.status).toBe(201);

    expectError(await api(`/api/tenants/${t.id}/git-tokens`, { token: other.owner.token }), 404, "not_found");
    expectError(
      await api(`/api/tenants/${t.id}/git-tokens`, { token: other.owner.token, body: mintBody(assetId) }),
      404,
      "not_found",
    );
    const crossDelete = await api(`/api/tenants/${t.id}/git-tokens/${minted.body.id}`, {
      method: "DELETE",
      token: other.owner.token,
    });
    expectError(crossDelete, 404, "not_found");
    const foreignToken = await api(`/api/tenants/${t.id}/git-tokens/${foreign.body.id}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expectError(foreignToken, 404, "not_found");
    expect((await storedRow(foreign.body.id))?.revokedAt).toBeNull();

    const reader = await addMember(t, "member");
    const denied = await api(`/api/tenants/${t.id}/git-tokens/${minted.body.id}`, {
      method: "DELETE",
      token: reader.token,
    });
    expectError(denied, 403, "forbidden");
    expect((await storedRow(minted.body.id))?.revokedAt).toBeNull();
    const noRole = await addMember(t, null);
    expectError(await api(`/api/tenants/${t.id}/git-tokens`, { token: noRole.token }), 403, "forbidden");

    const revoked = await api(`/api/tenants/${t.id}/git-tokens/${minted.body.id}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expect(revoked.status).toBe(204);
    expect((await storedRow(minted.body.id))?.revokedAt).toBeInstanceOf(Date);
    const unknown = await api(`/api/tenants/${t.id}/git-tokens/${newId("gitToken")}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expectError(unknown, 404, "not_found");
  });

  it("is described in the OpenAPI document", async () => {
    const doc = await api("/openapi.json");
    expect(doc.body.tags.map((tag: { name: string }) => tag.name)).toContain("Git Tokens");
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        "/api/me/git-tokens",
        "/api/me/git-tokens/{tokenId}",
        "/api/tenants/{tenantId}/git-tokens",
        "/api/tenants/{tenantId}/git-tokens/{tokenId}",
      ]),
    );
  });
});
