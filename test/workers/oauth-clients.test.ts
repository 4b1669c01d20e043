/** OAuth clients: one per provider and tenant, write-only encrypted secret, grants, isolation, validation. */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { revealClientSecret } from "../../src/catalog/oauth-clients";
import { getDb } from "../../src/db/client";
import { oauthClient } from "../../src/db/schema";
import { secretBox } from "../../src/secrets/encryption";
import { addMember, api, createTenant, expectError, type TestTenant, unique } from "./support/api";

const base = (tenantId: string) => `/api/tenants/${tenantId}/oauth-clients`;

async function createProvider(t: TestTenant, name = "github") {
  const res = await api(`/api/tenants/${t.id}/providers`, {
    token: t.owner.token,
    body: { name, plugin: "github", authorizationUrl: "https://github.example.test/login/oauth/authorize" },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

async function storedSecret(id: string): Promise<string> {
  const [row] = await getDb(env).select().from(oauthClient).where(eq(oauthClient.id, id));
  if (!row) throw new Error("no row");
  return revealClientSecret(secretBox(env), row);
}

describe("oauth clients", () => {
  it("registers, reads, rotates and deletes a client; the secret and client id are never returned", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const clientSecret = unique("cs-");
    const clientId = unique("Iv1.");
    const created = await api(base(t.id), {
      token: t.owner.token,
      body: {
        providerId,
        name: "GitHub app",
        clientId,
        clientSecret,
        redirectUris: ["https://hub.example.test/callback"],
        defaultScopes: ["repo"],
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^ocl_[0-9a-f]{32}$/),
      tenantId: t.id,
      providerId,
      name: "GitHub app",
      redirectUris: ["https://hub.example.test/callback"],
      defaultScopes: ["repo"],
      metadata: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const path = `${base(t.id)}/${created.body.id}`;
    const rotated = unique("cs-rotated-");
    const bodies = [
      created.body,
      (await api(path, { token: t.owner.token })).body,
      (await api(base(t.id), { token: t.owner.token })).body,
      (
        await api(path, {
          method: "PATCH",
          token: t.owner.token,
          body: { clientSecret: rotated, redirectUris: null, metadata: { app: 1 } },
        })
      ).body,
    ];
    for (const body of bodies) {
      const text = JSON.stringify(body);
      for (const plaintext of [clientSecret, clientId, rotated]) expect(text).not.toContain(plaintext);
    }
    expect(bodies[3]).toMatchObject({ redirectUris: null, metadata: { app: 1 }, defaultScopes: ["repo"] });
    expect(await storedSecret(created.body.id)).toBe(rotated);
    const raw = await env.DB.prepare("select * from oauth_client where id = ?").bind(created.body.id).first();
    expect(JSON.stringify(raw)).not.toContain(rotated);
    expect(new TextDecoder().decode(Uint8Array.from(raw?.client_secret_ciphertext as number[]))).not.toContain(rotated);

    expect((await api(path, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(path, { token: t.owner.token }), 404, "not_found");
    expectError(await api(path, { method: "DELETE", token: t.owner.token }), 404, "not_found");
  });

  it("one client per provider (409); an ancestor's provider is fine, another tenant's is 404", async () => {
    const parent = await createTenant();
    const child = await createTenant(parent.owner, { parentId: parent.id });
    const stranger = await createTenant();
    const providerId = await createProvider(parent);
    const body = { providerId, name: "app", clientId: "cid", clientSecret: "secret" };
    expect((await api(base(parent.id), { token: parent.owner.token, body })).status).toBe(201);
    expectError(await api(base(parent.id), { token: parent.owner.token, body }), 409, "conflict");
    const inChild = await api(base(child.id), { token: parent.owner.token, body });
    expect(inChild.status).toBe(201);
    expect(inChild.body.tenantId).toBe(child.id);
    // The child's list holds only its own client; the parent's is not visible there.
    const childList = await api(base(child.id), { token: parent.owner.token });
    expect(childList.body.data.map((c: { id: string }) => c.id)).toEqual([inChild.body.id]);
    expectError(await api(`${base(parent.id)}/${inChild.body.id}`, { token: parent.owner.token }), 404, "not_found");
    const foreign = await api(base(stranger.id), { token: stranger.owner.token, body });
    expect(expectError(foreign, 404, "not_found").message).toBe("Provider not found");
    expect((await api(base(stranger.id), { token: stranger.owner.token })).body.data).toEqual([]);
  });

  it("a member can read but not register, change or delete (nothing is written)", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const created = await api(base(t.id), {
      token: t.owner.token,
      body: { providerId, name: "app", clientId: "cid", clientSecret: "original" },
    });
    const member = await addMember(t);
    const path = `${base(t.id)}/${created.body.id}`;
    expect((await api(path, { token: member.token })).status).toBe(200);
    const other = await createProvider(t, "gitlab");
    expectError(
      await api(base(t.id), {
        token: member.token,
        body: { providerId: other, name: "x", clientId: "c", clientSecret: "s" },
      }),
      403,
      "forbidden",
    );
    expectError(
      await api(path, { method: "PATCH", token: member.token, body: { clientSecret: "evil" } }),
      403,
      "forbidden",
    );
    expectError(await api(path, { method: "DELETE", token: member.token }), 403, "forbidden");
    expect((await api(base(t.id), { token: t.owner.token })).body.data).toHaveLength(1);
    expect(await storedSecret(created.body.id)).toBe("original");
  });

  it("another tenant's user sees nothing", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const created = await api(base(t.id), {
      token: t.owner.token,
      body: { providerId, name: "app", clientId: "cid", clientSecret: "s" },
    });
    const stranger = await createTenant();
    const token = stranger.owner.token;
    expectError(await api(base(t.id), { token }), 404, "not_found");
    expectError(await api(`${base(t.id)}/${created.body.id}`, { token }), 404, "not_found");
    expectError(await api(`${base(stranger.id)}/${created.body.id}`, { token }), 404, "not_found");
    const patch = await api(`${base(stranger.id)}/${created.body.id}`, { method: "PATCH", token, body: { name: "x" } });
    expectError(patch, 404, "not_found");
  });

  it("rejects bad input with 400 validation_failed", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t);
    const valid = { providerId, name: "app", clientId: "cid", clientSecret: "s" };
    for (const body of [
      {},
      { ...valid, clientSecret: "" },
      { ...valid, clientId: undefined },
      { ...valid, redirectUris: ["not a url"] },
      { ...valid, defaultScopes: "repo" },
      { ...valid, metadata: 3 },
    ]) {
      expectError(await api(base(t.id), { token: t.owner.token, body }), 400, "validation_failed");
    }
    expect((await api(base(t.id), { token: t.owner.token })).body.data).toEqual([]);
  });
});
