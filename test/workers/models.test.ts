/** GET /api/models: the model catalog from providers' metadata, per tenant or across the caller's tenants. */
import { describe, expect, it } from "vitest";
import { addMember, api, createTenant, expectError, signUp, type TestTenant, unique } from "./support/api";

async function createProvider(t: TestTenant, name: string, models: unknown[], token = t.owner.token) {
  const res = await api(`/api/tenants/${t.id}/providers`, {
    token,
    body: { name, plugin: name, metadata: { baseURL: "https://api.example.test/v1", models } },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

const ids = (res: { body: { data: { providerName: string; id: string }[] } }) =>
  res.body.data.map((m) => `${m.providerName}/${m.id}`);

describe("GET /api/models", () => {
  it("lists a tenant's models with pricing and limits", async () => {
    const t = await createTenant();
    const providerId = await createProvider(t, "openai", [
      {
        id: "gpt-x",
        name: "GPT X",
        description: "Large",
        capabilities: ["tools", "vision"],
        pricing: { input: "2.50", output: "10.000", cacheRead: "0.25", currency: "USD" },
        limits: { context: 128000, output: 16384 },
      },
      { id: "gpt-mini" },
    ]);
    await createProvider(t, "no-models", []);
    const res = await api(`/api/models?tenantId=${t.id}`, { token: t.owner.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: [
        { id: "gpt-mini", providerId, providerName: "openai", name: "gpt-mini" },
        {
          id: "gpt-x",
          providerId,
          providerName: "openai",
          name: "GPT X",
          description: "Large",
          capabilities: ["tools", "vision"],
          pricing: { input: "2.5", output: "10", cacheRead: "0.25", currency: "USD" },
          limits: { context: 128000, output: 16384 },
        },
      ],
      nextCursor: null,
    });
  });

  it("includes ancestors' providers, with a child's provider shadowing the parent's", async () => {
    const parent = await createTenant();
    const child = await createTenant(parent.owner, { parentId: parent.id });
    await createProvider(parent, "openai", [{ id: "parent-model" }]);
    await createProvider(parent, "anthropic", [{ id: "claude-x" }]);
    await createProvider(child, "openai", [{ id: "child-model" }]);
    const token = parent.owner.token;
    expect(ids(await api(`/api/models?tenantId=${child.id}`, { token }))).toEqual([
      "anthropic/claude-x",
      "openai/child-model",
    ]);
    expect(ids(await api(`/api/models?tenantId=${parent.id}`, { token }))).toEqual([
      "anthropic/claude-x",
      "openai/parent-model",
    ]);
    // Across both tenants: each provider's models once, so the parent's inherited provider is not repeated.
    expect(ids(await api("/api/models", { token }))).toEqual([
      "anthropic/claude-x",
      "openai/child-model",
      "openai/parent-model",
    ]);
  });

  it("without tenantId: every tenant where the caller may read providers, and only those", async () => {
    const user = (await createTenant()).owner;
    const a = await createTenant(user);
    const b = await createTenant(user);
    await createProvider(a, unique("a"), [{ id: "model-a" }]);
    await createProvider(b, unique("b"), [{ id: "model-b" }]);
    const stranger = await createTenant();
    await createProvider(stranger, unique("s"), [{ id: "model-stranger" }]);
    // A tenant where the user is a member without any role: no provider:* read, so left out.
    const guarded = await createTenant();
    await createProvider(guarded, unique("g"), [{ id: "model-guarded" }]);
    const invite = await api(`/api/tenants/${guarded.id}/members/invite`, {
      token: guarded.owner.token,
      body: { email: user.email },
    });
    expect(invite.status).toBe(201);
    const accepted = await api(`/api/me/invitations/${invite.body.id}/accept`, { method: "POST", token: user.token });
    expect(accepted.status).toBe(200);

    const all = await api("/api/models", { token: user.token });
    expect(all.body.data.map((m: { id: string }) => m.id).sort()).toEqual(["model-a", "model-b"]);
    expectError(await api(`/api/models?tenantId=${guarded.id}`, { token: user.token }), 403, "forbidden");
    expect(
      (await api("/api/models", { token: stranger.owner.token })).body.data.map((m: { id: string }) => m.id),
    ).toEqual(["model-stranger"]);
  });

  it("a member with the default role reads the catalog; other tenants are 404; anonymous is 401", async () => {
    const t = await createTenant();
    await createProvider(t, "openai", [{ id: "gpt-x" }]);
    const member = await addMember(t);
    expect(ids(await api(`/api/models?tenantId=${t.id}`, { token: member.token }))).toEqual(["openai/gpt-x"]);
    const stranger = await createTenant();
    expectError(await api(`/api/models?tenantId=${t.id}`, { token: stranger.owner.token }), 404, "not_found");
    expectError(await api("/api/models?tenantId=tnt_unknown", { token: member.token }), 404, "not_found");
    expectError(await api("/api/models"), 401, "unauthorized");
    expectError(await api(`/api/models?tenantId=${t.id}`), 401, "unauthorized");
    expectError(await api("/api/models?tenantId=", { token: member.token }), 400, "validation_failed");
    // A user with no tenant at all gets an empty catalog.
    const loner = await signUp("Loner");
    expect((await api("/api/models", { token: loner.token })).body).toEqual({ data: [], nextCursor: null });
  });
});
