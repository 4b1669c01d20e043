/** Providers: CRUD, inheritance down the tenant hierarchy with shadowing, grants, isolation, validation. */
import { describe, expect, it } from "vitest";
import { addMember, api, createTenant, expectError, type TestTenant } from "./support/api";

const base = (tenantId: string) => `/api/tenants/${tenantId}/providers`;

const openai = {
  name: "openai",
  plugin: "openai",
  tokenUrl: "https://auth.example.test/token",
  scopes: ["chat"],
  metadata: {
    baseURL: "https://api.example.test/v1",
    region: "eu",
    models: [{ id: "gpt-x", pricing: { input: "2.50", output: "10" }, limits: { context: 128000 } }],
  },
};

async function createProvider(t: TestTenant, body: Record<string, unknown> = openai) {
  const res = await api(base(t.id), { token: t.owner.token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function childOf(parent: TestTenant) {
  return createTenant(parent.owner, { parentId: parent.id });
}

const names = (res: { body: { data: { name: string; tenantId: string }[] } }) =>
  res.body.data.map((p) => `${p.name}@${p.tenantId}`).sort();

describe("providers", () => {
  it("creates, reads, lists, changes and deletes a provider", async () => {
    const t = await createTenant();
    const created = await createProvider(t);
    expect(created).toEqual({
      id: expect.stringMatching(/^prv_[0-9a-f]{32}$/),
      tenantId: t.id,
      name: "openai",
      plugin: "openai",
      authorizationUrl: null,
      tokenUrl: "https://auth.example.test/token",
      userInfoUrl: null,
      scopes: ["chat"],
      metadata: {
        baseURL: "https://api.example.test/v1",
        region: "eu",
        models: [{ id: "gpt-x", pricing: { input: "2.5", output: "10" }, limits: { context: 128000 } }],
      },
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const path = `${base(t.id)}/${created.id}`;
    expect((await api(path, { token: t.owner.token })).body).toEqual(created);
    const list = await api(base(t.id), { token: t.owner.token });
    expect(list.body).toEqual({ data: [created], nextCursor: null });

    const changed = await api(path, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "openai-eu", tokenUrl: null, scopes: null, metadata: { baseURL: "https://eu.example.test" } },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      name: "openai-eu",
      plugin: "openai",
      tokenUrl: null,
      scopes: null,
      metadata: { baseURL: "https://eu.example.test" },
    });
    expect((await api(path, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(path, { token: t.owner.token }), 404, "not_found");
    expectError(await api(path, { method: "DELETE", token: t.owner.token }), 404, "not_found");
    expectError(await api(path, { method: "PATCH", token: t.owner.token, body: { plugin: "x" } }), 404, "not_found");
  });

  it("inherits ancestors' providers; a child's provider of the same name shadows the parent's", async () => {
    const parent = await createTenant();
    const child = await childOf(parent);
    const grandchild = await childOf(child);
    const parentOpenai = await createProvider(parent);
    const parentAnthropic = await createProvider(parent, { name: "anthropic", plugin: "anthropic" });
    const childOpenai = await createProvider(child, { name: "openai", plugin: "openai-proxy" });

    const seen = await api(base(grandchild.id), { token: parent.owner.token });
    expect(names(seen)).toEqual([`anthropic@${parent.id}`, `openai@${child.id}`]);
    expect(names(await api(base(child.id), { token: parent.owner.token }))).toEqual([
      `anthropic@${parent.id}`,
      `openai@${child.id}`,
    ]);
    // A parent never sees its children's providers.
    expect(names(await api(base(parent.id), { token: parent.owner.token }))).toEqual([
      `anthropic@${parent.id}`,
      `openai@${parent.id}`,
    ]);
    const own = await api(`${base(child.id)}?inherited=false`, { token: parent.owner.token });
    expect(own.body.data.map((p: { id: string }) => p.id)).toEqual([childOpenai.id]);
    expect((await api(`${base(grandchild.id)}?inherited=false`, { token: parent.owner.token })).body.data).toEqual([]);

    // Paginated like every list, inherited or not.
    const first = await api(`${base(grandchild.id)}?limit=1`, { token: parent.owner.token });
    expect(first.body.data).toHaveLength(1);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await api(`${base(grandchild.id)}?limit=1&cursor=${first.body.nextCursor}`, {
      token: parent.owner.token,
    });
    expect(second.body.nextCursor).toBeNull();
    expect([first.body.data[0].id, second.body.data[0].id].sort()).toEqual([childOpenai.id, parentAnthropic.id].sort());

    // An ancestor's provider can be read by id from below, even a shadowed one, but not changed there.
    expect((await api(`${base(grandchild.id)}/${parentOpenai.id}`, { token: parent.owner.token })).status).toBe(200);
    const inherited = `${base(child.id)}/${parentAnthropic.id}`;
    expectError(
      await api(inherited, { method: "PATCH", token: parent.owner.token, body: { plugin: "x" } }),
      404,
      "not_found",
    );
    expectError(await api(inherited, { method: "DELETE", token: parent.owner.token }), 404, "not_found");
    // A child's provider is not visible from the parent.
    expectError(await api(`${base(parent.id)}/${childOpenai.id}`, { token: parent.owner.token }), 404, "not_found");
    expect((await api(`${base(parent.id)}/${parentAnthropic.id}`, { token: parent.owner.token })).body.plugin).toBe(
      "anthropic",
    );
  });

  it("refuses duplicate names in a tenant (create and rename) with 409", async () => {
    const t = await createTenant();
    await createProvider(t);
    expectError(await api(base(t.id), { token: t.owner.token, body: openai }), 409, "conflict");
    const other = await createProvider(t, { name: "other", plugin: "x" });
    const rename = await api(`${base(t.id)}/${other.id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "openai" },
    });
    expectError(rename, 409, "conflict");
    expect((await api(`${base(t.id)}/${other.id}`, { token: t.owner.token })).body.name).toBe("other");
  });

  it("a member can read but not create, change or delete (nothing is written)", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const created = await createProvider(t);
    expect((await api(base(t.id), { token: member.token })).body.data).toHaveLength(1);
    expect((await api(`${base(t.id)}/${created.id}`, { token: member.token })).status).toBe(200);
    expectError(await api(base(t.id), { token: member.token, body: { name: "mine", plugin: "x" } }), 403, "forbidden");
    const path = `${base(t.id)}/${created.id}`;
    expectError(await api(path, { method: "PATCH", token: member.token, body: { plugin: "evil" } }), 403, "forbidden");
    expectError(await api(path, { method: "DELETE", token: member.token }), 403, "forbidden");
    const after = await api(base(t.id), { token: t.owner.token });
    expect(after.body.data).toEqual([created]);
    // A member without any role cannot even read.
    const nobody = await addMember(t, null);
    expectError(await api(base(t.id), { token: nobody.token }), 403, "forbidden");
    expectError(await api(path, { token: nobody.token }), 403, "forbidden");
  });

  it("another tenant's user sees nothing: 404 on the tenant and on the provider id", async () => {
    const t = await createTenant();
    const created = await createProvider(t);
    const stranger = await createTenant();
    expectError(await api(base(t.id), { token: stranger.owner.token }), 404, "not_found");
    expectError(await api(`${base(t.id)}/${created.id}`, { token: stranger.owner.token }), 404, "not_found");
    expectError(
      await api(base(t.id), { token: stranger.owner.token, body: { name: "x", plugin: "y" } }),
      404,
      "not_found",
    );
    // Through their own tenant, the id is unknown.
    expectError(await api(`${base(stranger.id)}/${created.id}`, { token: stranger.owner.token }), 404, "not_found");
    const del = await api(`${base(stranger.id)}/${created.id}`, { method: "DELETE", token: stranger.owner.token });
    expectError(del, 404, "not_found");
    expect((await api(`${base(t.id)}/${created.id}`, { token: t.owner.token })).status).toBe(200);
  });

  it("rejects bad input with 400 validation_failed", async () => {
    const t = await createTenant();
    const bodies = [
      {},
      { name: "x" },
      { name: "", plugin: "x" },
      { name: "has space", plugin: "x" },
      { name: "x", plugin: "x", tokenUrl: "not a url" },
      { name: "x", plugin: "x", authorizationUrl: "ftp://example.test/auth" },
      { name: "x", plugin: "x", scopes: "chat" },
      { name: "x", plugin: "x", metadata: "x" },
      { name: "x", plugin: "x", metadata: { baseURL: "nope" } },
      { name: "x", plugin: "x", metadata: { models: [{ id: "m", pricing: { input: "-1" } }] } },
      { name: "x", plugin: "x", metadata: { models: [{ id: "m", pricing: { input: 2.5 } }] } },
      { name: "x", plugin: "x", metadata: { models: [{ id: "m", limits: { context: -5 } }] } },
      { name: "x", plugin: "x", metadata: { models: [{ id: "m" }, { id: "m" }] } },
      { name: "x", plugin: "x", metadata: { models: [{}] } },
    ];
    for (const body of bodies) {
      const res = await api(base(t.id), { token: t.owner.token, body });
      expectError(res, 400, "validation_failed");
    }
    expectError(await api(`${base(t.id)}?inherited=maybe`, { token: t.owner.token }), 400, "validation_failed");
    expectError(await api(`${base(t.id)}?cursor=garbage!`, { token: t.owner.token }), 400, "invalid_cursor");
    const created = await createProvider(t);
    const patch = await api(`${base(t.id)}/${created.id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { metadata: { baseURL: 5 } },
    });
    expectError(patch, 400, "validation_failed");
    expectError(await api(base(t.id), { token: t.owner.token, body: "{not json" }), 400, "invalid_json");
    expect((await api(base(t.id), { token: t.owner.token })).body.data).toHaveLength(1);
  });
});
