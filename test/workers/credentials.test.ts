/**
 * Credentials: write-only secrets encrypted at rest, ownership, inheritance, resolve-by-name, grants,
 * isolation, validation. The end-to-end check decrypts through credential resolution with the Worker's key.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { resolveCredentials } from "../../src/catalog/credential-resolution";
import { getDb } from "../../src/db/client";
import { secretBox } from "../../src/secrets/encryption";
import { addMember, api, createTenant, expectError, type TestTenant, unique } from "./support/api";

const base = (tenantId: string) => `/api/tenants/${tenantId}/credentials`;

async function createProvider(t: TestTenant, name = "openai") {
  const res = await api(`/api/tenants/${t.id}/providers`, {
    token: t.owner.token,
    body: { name, plugin: "openai", metadata: { baseURL: "https://api.example.test/v1" } },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

async function createCredential(t: TestTenant, body: Record<string, unknown>, token = t.owner.token) {
  const res = await api(base(t.id), { token, body: { type: "api_key", ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Every column of the raw D1 row as text (blobs decoded byte for byte), for plaintext searches. */
async function rawRow(id: string): Promise<string> {
  const row = await env.DB.prepare("select * from credential where id = ?").bind(id).first<Record<string, unknown>>();
  expect(row).not.toBeNull();
  const ciphertext = bytesOf(row?.secret_ciphertext);
  expect(ciphertext.byteLength).toBeGreaterThan(28);
  return Object.values(row ?? {})
    .map((v) => (v !== null && typeof v === "object" ? new TextDecoder().decode(bytesOf(v)) : String(v)))
    .join("\n");
}

function bytesOf(value: unknown): Uint8Array {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return Uint8Array.from(value as number[]);
  throw new Error(`not a blob: ${typeof value}`);
}

describe("credentials", () => {
  it("stores secrets encrypted and never returns them, on any route", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const secret = unique("sk-live-");
    const refreshSecret = unique("rt-live-");
    const created = await createCredential(t, {
      providerId,
      name: "openai-prod",
      description: "Production key",
      secret,
      refreshSecret,
      scopes: ["chat"],
      expiresAt: "2099-01-01T00:00:00Z",
      metadata: { team: "core" },
    });
    expect(created).toEqual({
      id: expect.stringMatching(/^crd_[0-9a-f]{32}$/),
      tenantId: t.id,
      providerId,
      principalId: null,
      oauthClientId: null,
      name: "openai-prod",
      type: "api_key",
      description: "Production key",
      scopes: ["chat"],
      expiresAt: "2099-01-01T00:00:00.000Z",
      status: "active",
      metadata: { team: "core" },
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const path = `${base(t.id)}/${created.id}`;
    const rotated = unique("sk-rotated-");
    const responses = [
      created,
      (await api(path, { token: t.owner.token })).body,
      (await api(base(t.id), { token: t.owner.token })).body,
      (await api(`${base(t.id)}/resolve/openai-prod`, { token: t.owner.token })).body,
      (await api(path, { method: "PATCH", token: t.owner.token, body: { secret: rotated, refreshSecret: null } })).body,
    ];
    for (const body of responses) {
      const text = JSON.stringify(body);
      for (const plaintext of [secret, refreshSecret, rotated]) expect(text).not.toContain(plaintext);
      expect(text).not.toMatch(/secret"|ciphertext/i);
    }
    expect(responses[1]).toEqual(created);

    // At rest: no plaintext in the raw row; the refresh secret was cleared; the new secret decrypts.
    const raw = await rawRow(created.id);
    for (const plaintext of [secret, refreshSecret, rotated]) expect(raw).not.toContain(plaintext);
    const row = await env.DB.prepare("select refresh_secret_ciphertext, secret_ciphertext from credential where id = ?")
      .bind(created.id)
      .first<{ refresh_secret_ciphertext: unknown; secret_ciphertext: unknown }>();
    expect(row?.refresh_secret_ciphertext).toBeNull();
    expect(row?.secret_ciphertext).not.toBeNull();
    const [outcome] = await resolveCredentials(getDb(env), {
      tenantId: t.id,
      requirements: [{ providerName: "openai", source: "tenant" }],
      secrets: secretBox(env),
    });
    expect(outcome).toMatchObject({ outcome: "ok", credentialId: created.id, secret: rotated });
  });

  it("changes, revokes and deletes; status and expiry take a credential out of resolution", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const created = await createCredential(t, { providerId, name: "k", secret: "s1" });
    const path = `${base(t.id)}/${created.id}`;
    const resolve = async () =>
      (
        await resolveCredentials(getDb(env), {
          tenantId: t.id,
          requirements: [{ providerName: "openai", source: "tenant" }],
          secrets: secretBox(env),
        })
      )[0]?.outcome;
    expect(await resolve()).toBe("ok");
    const expired = await api(path, {
      method: "PATCH",
      token: t.owner.token,
      body: { expiresAt: "2020-01-01T00:00:00.000Z", description: "old", scopes: ["a"] },
    });
    expect(expired.body).toMatchObject({ expiresAt: "2020-01-01T00:00:00.000Z", description: "old", scopes: ["a"] });
    expect(await resolve()).toBe("credential_expired");
    const revoked = await api(path, {
      method: "PATCH",
      token: t.owner.token,
      body: { expiresAt: null, status: "revoked" },
    });
    expect(revoked.body).toMatchObject({ expiresAt: null, status: "revoked" });
    expect(await resolve()).toBe("credential_revoked");
    await api(path, { method: "PATCH", token: t.owner.token, body: { status: "active", name: "renamed" } });
    expect(await resolve()).toBe("ok");
    expect((await api(`${base(t.id)}/resolve/renamed`, { token: t.owner.token })).body.id).toBe(created.id);
    expect((await api(path, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(path, { token: t.owner.token }), 404, "not_found");
    expectError(await api(path, { method: "DELETE", token: t.owner.token }), 404, "not_found");
    expectError(await api(path, { method: "PATCH", token: t.owner.token, body: { name: "x" } }), 404, "not_found");
    expectError(await api(`${base(t.id)}/resolve/renamed`, { token: t.owner.token }), 404, "not_found");
    expect(await resolve()).toBe("credential_missing");
  });

  it("owns credentials by the tenant or a principal, filtered by owner=me|org|all", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const admin = await addMember(t, "admin");
    const org = await createCredential(t, { providerId, name: "org", secret: "s" });
    const mine = await createCredential(
      t,
      { providerId, name: "mine", secret: "s", principalId: admin.principalId },
      admin.token,
    );
    expect(mine.principalId).toBe(admin.principalId);
    const forOwner = await createCredential(
      t,
      { providerId, name: "for-owner", secret: "s", principalId: t.ownerPrincipalId },
      admin.token,
    );
    const ids = async (owner: string) =>
      (await api(`${base(t.id)}?owner=${owner}`, { token: admin.token })).body.data.map((c: { id: string }) => c.id);
    expect(await ids("me")).toEqual([mine.id]);
    expect(await ids("org")).toEqual([org.id]);
    expect((await ids("all")).sort()).toEqual([org.id, mine.id, forOwner.id].sort());
    const page = await api(`${base(t.id)}?limit=2`, { token: admin.token });
    expect(page.body.data).toHaveLength(2);
    const rest = await api(`${base(t.id)}?limit=2&cursor=${page.body.nextCursor}`, { token: admin.token });
    expect(rest.body).toMatchObject({ data: [expect.any(Object)], nextCursor: null });
  });

  it("checks the provider, the owner principal and the OAuth client", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const providerId = await createProvider(t);
    const otherProvider = await createProvider(other);
    const github = await createProvider(t, "github");
    const client = await api(`/api/tenants/${t.id}/oauth-clients`, {
      token: t.owner.token,
      body: { providerId: github, name: "gh", clientId: "cid", clientSecret: "csecret" },
    });
    expect(client.status).toBe(201);
    const attempt = (body: Record<string, unknown>) =>
      api(base(t.id), { token: t.owner.token, body: { type: "api_key", name: unique("c"), secret: "s", ...body } });
    expect(expectError(await attempt({ providerId: otherProvider }), 404, "not_found").message).toBe(
      "Provider not found",
    );
    expectError(await attempt({ providerId: "prv_nope" }), 404, "not_found");
    expect(
      expectError(await attempt({ providerId, principalId: other.ownerPrincipalId }), 404, "not_found").message,
    ).toBe("Principal not found");
    expectError(await attempt({ providerId, oauthClientId: "ocl_nope" }), 404, "not_found");
    expectError(await attempt({ providerId, oauthClientId: client.body.id }), 400, "oauth_client_provider_mismatch");
    const linked = await attempt({ providerId: github, oauthClientId: client.body.id, type: "oauth_token" });
    expect(linked.status).toBe(201);
    expect(linked.body).toMatchObject({ oauthClientId: client.body.id, type: "oauth_token" });
    expect((await api(base(t.id), { token: t.owner.token })).body.data).toHaveLength(1);
  });

  it("refuses duplicate names in a tenant with 409", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    await createCredential(t, { providerId, name: "dup", secret: "s" });
    expectError(
      await api(base(t.id), { token: t.owner.token, body: { providerId, name: "dup", type: "api_key", secret: "s" } }),
      409,
      "conflict",
    );
    const second = await createCredential(t, { providerId, name: "second", secret: "s" });
    const rename = await api(`${base(t.id)}/${second.id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "dup" },
    });
    expectError(rename, 409, "conflict");
  });

  it("sees ancestors' credentials (metadata), nearest name first, but changes only its own", async () => {
    const parent = await createTenant();
    const child = await createTenant(parent.owner, { parentId: parent.id });
    const providerId = await createProvider(parent);
    const inherited = await createCredential(parent, { providerId, name: "shared", secret: "parent-secret" });
    // The child can store a credential against the parent's provider.
    const own = await createCredential(child, { providerId, name: "child-only", secret: "child-secret" });
    const token = parent.owner.token;
    expect((await api(`${base(child.id)}/${inherited.id}`, { token })).body).toEqual(inherited);
    expect((await api(`${base(child.id)}/resolve/shared`, { token })).body.id).toBe(inherited.id);
    expect((await api(base(child.id), { token })).body.data.map((c: { id: string }) => c.id)).toEqual([own.id]);
    const shadow = await createCredential(child, { providerId, name: "shared", secret: "child-shared" });
    expect((await api(`${base(child.id)}/resolve/shared`, { token })).body.id).toBe(shadow.id);
    expect((await api(`${base(parent.id)}/resolve/shared`, { token })).body.id).toBe(inherited.id);
    expectError(await api(`${base(parent.id)}/resolve/child-only`, { token }), 404, "not_found");
    expectError(await api(`${base(parent.id)}/${own.id}`, { token }), 404, "not_found");
    const path = `${base(child.id)}/${inherited.id}`;
    expectError(await api(path, { method: "PATCH", token, body: { status: "revoked" } }), 404, "not_found");
    expectError(await api(path, { method: "DELETE", token }), 404, "not_found");
    expect((await api(`${base(parent.id)}/${inherited.id}`, { token })).body.status).toBe("active");
  });

  it("a member can read but not create, change or delete; storing for someone else needs manage", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const created = await createCredential(t, { providerId, name: "k", secret: "s" });
    const member = await addMember(t);
    const path = `${base(t.id)}/${created.id}`;
    expect((await api(path, { token: member.token })).status).toBe(200);
    expectError(
      await api(base(t.id), { token: member.token, body: { providerId, name: "m", type: "api_key", secret: "s" } }),
      403,
      "forbidden",
    );
    expectError(await api(path, { method: "PATCH", token: member.token, body: { secret: "evil" } }), 403, "forbidden");
    expectError(await api(path, { method: "DELETE", token: member.token }), 403, "forbidden");
    // A role that may create credentials, but not manage them: only for itself or the tenant.
    const role = await api(`/api/tenants/${t.id}/roles`, { token: t.owner.token, body: { name: "key-holders" } });
    const granted = await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { roleId: role.body.id, resource: "credential:*", action: "create", effect: "allow" },
    });
    expect(granted.status).toBe(201);
    const assigned = await api(`/api/tenants/${t.id}/principals/${member.principalId}/roles/${role.body.id}`, {
      method: "POST",
      token: t.owner.token,
    });
    expect(assigned.status).toBe(204);
    const forOwner = await api(base(t.id), {
      token: member.token,
      body: { providerId, name: "planted", type: "api_key", secret: "s", principalId: t.ownerPrincipalId },
    });
    expectError(forOwner, 403, "forbidden");
    const forSelf = await api(base(t.id), {
      token: member.token,
      body: { providerId, name: "own", type: "api_key", secret: "s", principalId: member.principalId },
    });
    expect(forSelf.status).toBe(201);
    const names = (await api(base(t.id), { token: t.owner.token })).body.data.map((c: { name: string }) => c.name);
    expect(names.sort()).toEqual(["k", "own"]);
    // The failed PATCH left the secret as it was.
    const [outcome] = await resolveCredentials(getDb(env), {
      tenantId: t.id,
      requirements: [{ providerName: "openai", source: "tenant" }],
      secrets: secretBox(env),
    });
    expect(outcome).toMatchObject({ outcome: "ok", secret: "s" });
  });

  it("another tenant's user sees nothing", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const created = await createCredential(t, { providerId, name: "k", secret: "s" });
    const stranger = await createTenant();
    const token = stranger.owner.token;
    expectError(await api(base(t.id), { token }), 404, "not_found");
    expectError(await api(`${base(t.id)}/${created.id}`, { token }), 404, "not_found");
    expectError(await api(`${base(t.id)}/resolve/k`, { token }), 404, "not_found");
    expectError(await api(`${base(stranger.id)}/${created.id}`, { token }), 404, "not_found");
    expectError(await api(`${base(stranger.id)}/resolve/k`, { token }), 404, "not_found");
    expectError(await api(`${base(stranger.id)}/${created.id}`, { method: "DELETE", token }), 404, "not_found");
    expectError(
      await api(`${base(stranger.id)}/${created.id}`, { method: "PATCH", token, body: { secret: "x" } }),
      404,
      "not_found",
    );
    expect((await api(`${base(t.id)}/${created.id}`, { token: t.owner.token })).status).toBe(200);
  });

  it("rejects bad input with 400 validation_failed", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const valid = { providerId, name: "k", type: "api_key", secret: "s" };
    const bodies = [
      {},
      { ...valid, secret: undefined },
      { ...valid, secret: "" },
      { ...valid, type: "password" },
      { ...valid, name: "" },
      { ...valid, name: "a/b" },
      { ...valid, expiresAt: "tomorrow" },
      { ...valid, scopes: [1] },
      { ...valid, metadata: [] },
      { ...valid, secret: 42 },
    ];
    for (const body of bodies) {
      expectError(await api(base(t.id), { token: t.owner.token, body }), 400, "validation_failed");
    }
    expectError(await api(`${base(t.id)}?owner=everyone`, { token: t.owner.token }), 400, "validation_failed");
    const created = await createCredential(t, valid);
    for (const body of [{ status: "paused" }, { secret: "" }, { expiresAt: 5 }]) {
      const res = await api(`${base(t.id)}/${created.id}`, { method: "PATCH", token: t.owner.token, body });
      expectError(res, 400, "validation_failed");
    }
    expect((await api(base(t.id), { token: t.owner.token })).body.data).toHaveLength(1);
  });
});
