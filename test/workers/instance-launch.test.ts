/**
 * Launching an instance over HTTP, with real D1 and Durable Objects and a protocol-level test sidecar on
 * the real WebSocket channels: what a launch writes, what the sidecar is sent, and a launch that no
 * sidecar runs (nothing written, 502).
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentInstance, agentSession, grant, principal } from "../../src/db/schema";
import { addMember, api, expectError } from "./support/api";
import {
  agentPrincipals,
  agentStateGrants,
  createAgent,
  db,
  instanceRows,
  instancesOf,
  ok,
  type Runtime,
  SLOW,
  sessionsOf,
  setUpRuntime,
  tenantBase,
  until,
} from "./support/runtime";
import { TestSidecar } from "./support/test-sidecar";

describe("launching an instance", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("deploys onto the connected sidecar and answers 201 running, with the creator's agent-state grant", async () => {
    const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: r.agentId } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.id as string;
    expect(res.body).toEqual({
      id: expect.stringMatching(/^ins_[0-9a-f]{32}$/),
      agentId: r.agentId,
      agentName: expect.stringMatching(/^Echo /),
      tenantId: r.t.id,
      principalId: expect.stringMatching(/^prn_/),
      address: expect.stringMatching(new RegExp(`^${id}@.+`)),
      status: "running",
      publicKey: expect.stringMatching(/^[0-9a-f]{64}$/),
      kernelId: null,
      sidecarId: r.sidecarId,
      sessionId: expect.stringMatching(/^ses_/),
      stopReason: null,
      runtimeStatus: "idle",
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      endedAt: null,
    });

    // The sidecar saw the protocol's first deploy, and the hub kept the key it generated.
    const channel = await sidecar.instance(id);
    // Between them, the deploy tree (docs/sidecar-protocol.md, "State and packs").
    const types = channel.log.frames.map((f) => f.type).filter((t) => t !== "repo.pack.push");
    expect(types.slice(0, 3)).toEqual(["agent.deploy", "repo.pack.done", "session.start"]);
    expect(res.body.publicKey).toBe(channel.publicKeyHex);
    const deploy = channel.log.frames[0];
    expect(deploy).toMatchObject({ agentAddress: res.body.address, agentId: r.agentId });
    // The hub's public signing key, as served to everyone, so the sidecar can check hub-signed commits.
    const signingKey = await api("/api/signing-key");
    expect(deploy?.hubPublicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(deploy?.hubPublicKey).toBe(signingKey.body.publicKey);
    expect(deploy?.config).toMatchObject({
      instanceId: id,
      sessionId: res.body.sessionId,
      agentId: r.agentId,
      tenantId: r.t.id,
      agentAddress: res.body.address,
      systemPrompt: "You repeat what you are told.",
      tools: [],
      sources: [
        {
          id: "echo:echo",
          provider: "echo",
          baseURL: "http://127.0.0.1/echo",
          apiKey: "echo-secret-value",
          model: "echo",
        },
      ],
      defaultSource: "echo:echo",
    });
    expect(deploy?.config.principalId).toMatch(/^prn_/);

    // The definition's creator may read the instance's state.
    const stateGrants = (await agentStateGrants(r.t.id)).filter((g) => g.resource === `agent-state:${id}`);
    expect(stateGrants).toEqual([
      expect.objectContaining({
        principalId: r.t.ownerPrincipalId,
        resource: `agent-state:${id}`,
        action: "read",
        effect: "allow",
        origin: "creator",
      }),
    ]);
    const [row] = await db.select().from(agentInstance).where(eq(agentInstance.id, id));
    expect(row).toMatchObject({ status: "running", sidecarId: r.sidecarId, publicKey: channel.publicKeyHex });
    const [agentPrincipal] = await db.select().from(principal).where(eq(principal.refId, id));
    expect(agentPrincipal).toMatchObject({ kind: "agent", status: "active", id: deploy?.config.principalId });
    const [session] = await db.select().from(agentSession).where(eq(agentSession.id, res.body.sessionId));
    expect(session).toMatchObject({ status: "active", principalId: r.t.ownerPrincipalId, agentId: r.agentId });
  });

  it("409 with the credential outcome or not_launchable, writing nothing", async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["no system prompt", { systemPrompt: null }, "not_launchable"],
      ["blank system prompt", { systemPrompt: "   " }, "not_launchable"],
      ["modelConfig without defaultModel", { modelConfig: { temperature: 0.2 } }, "not_launchable"],
      ["no modelConfig", { modelConfig: null }, "not_launchable"],
      ["no credential requirements", { credentialRequirements: [] }, "not_launchable"],
      [
        "unknown provider",
        { credentialRequirements: [{ providerName: "nope", source: "tenant" }] },
        "provider_missing",
      ],
      [
        "no credential for the provider and source",
        { credentialRequirements: [{ providerName: "echo", source: "creator" }] },
        "credential_missing",
      ],
    ];
    for (const [what, fields, code] of cases) {
      const agent = await createAgent(r, fields);
      const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: agent.id } });
      expect({ what, status: res.status, code: res.body?.error?.code }).toEqual({ what, status: 409, code });
      expect(await instanceRows(agent.id)).toEqual([]);
      expect(await sessionsOf(agent.id)).toEqual([]);
    }
  });

  it("409 not_launchable names every field a definition lacks, at once, in details.issues", async () => {
    const bare = await createAgent(r, { systemPrompt: null, modelConfig: null, credentialRequirements: null });
    const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: bare.id } });
    const error = expectError(res, 409, "not_launchable");
    expect(error.message).toBe(
      "The agent definition cannot be launched: systemPrompt is missing; modelConfig.defaultModel is missing; " +
        "credentialRequirements is missing",
    );
    expect(error.details).toEqual({
      issues: [
        { path: "systemPrompt", code: "missing", message: expect.any(String) },
        { path: "modelConfig.defaultModel", code: "missing", message: expect.any(String) },
        { path: "credentialRequirements", code: "missing", message: expect.any(String) },
      ],
    });
    expect(await instanceRows(bare.id)).toEqual([]);

    // A wrong type is reported with the missing ones.
    const typed = await createAgent(r, { systemPrompt: "  ", modelConfig: { defaultModel: 42 } });
    const wrong = expectError(
      await api(instancesOf(r.t.id), { token: r.token, body: { agentId: typed.id } }),
      409,
      "not_launchable",
    );
    expect(wrong.details.issues).toEqual([
      { path: "systemPrompt", code: "missing", message: expect.any(String) },
      { path: "modelConfig.defaultModel", code: "invalid", message: "Invalid input: expected string, received number" },
    ]);

    // Completed, the same definition launches.
    await ok(
      `${tenantBase(r.t.id)}/agents/definitions/${bare.id}`,
      r.token,
      {
        systemPrompt: "You repeat what you are told.",
        modelConfig: { defaultModel: "echo" },
        credentialRequirements: [{ providerName: "echo", source: "tenant" }],
      },
      "PATCH",
    );
    const launched = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: bare.id } });
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
  });

  it("409 provider_misconfigured and 409 credential_error for an ambiguous match, writing and sending nothing", async () => {
    const own = await setUpRuntime();
    const mute = await TestSidecar.connect(own.secret);
    try {
      const base = tenantBase(own.t.id);
      await ok(`${base}/providers`, own.token, { name: "bare", plugin: "openai", metadata: {} });
      const bare = await createAgent(own, { credentialRequirements: [{ providerName: "bare", source: "tenant" }] });
      const misconfigured = await api(instancesOf(own.t.id), { token: own.token, body: { agentId: bare.id } });
      expect(expectError(misconfigured, 409, "provider_misconfigured").message).toMatch(/baseURL/i);
      expect(await instanceRows(bare.id)).toEqual([]);

      await ok(`${base}/credentials`, own.token, {
        name: "echo-key-2",
        type: "api_key",
        providerId: own.providerId,
        secret: "another-secret",
      });
      const ambiguous = await api(instancesOf(own.t.id), { token: own.token, body: { agentId: own.agentId } });
      expect(expectError(ambiguous, 409, "credential_error").message).toContain("Ambiguous credential match");
      expect(await instanceRows(own.agentId)).toEqual([]);
      expect(await sessionsOf(own.agentId)).toEqual([]);
      expect(await agentPrincipals(own.t.id)).toEqual([]);
      expect(mute.control.ofType("instance.assign")).toEqual([]);
    } finally {
      mute.close();
    }
  });

  it("is all or nothing: a write failing mid-launch leaves no principal, session, instance or grant", async () => {
    const own = await setUpRuntime();
    const idle = await TestSidecar.connect(own.secret);
    // The creator's agent-state grant is the launch batch's last write: make exactly that one fail.
    const trigger = `fail_launch_${own.t.id}`;
    await env.DB.exec(
      `create trigger ${trigger} before insert on "grant" when new.tenant_id = '${own.t.id}' and new.resource like 'agent-state:%' begin select raise(abort, 'injected failure'); end`,
    );
    try {
      try {
        const res = await api(instancesOf(own.t.id), { token: own.token, body: { agentId: own.agentId } });
        const error = expectError(res, 500, "internal_error");
        expect(error.message).not.toContain("injected");
        expect(await instanceRows(own.agentId)).toEqual([]);
        expect(await sessionsOf(own.agentId)).toEqual([]);
        expect(await agentPrincipals(own.t.id)).toEqual([]);
        expect(await agentStateGrants(own.t.id)).toEqual([]);
        expect(idle.control.ofType("instance.assign")).toEqual([]);
      } finally {
        await env.DB.exec(`drop trigger if exists ${trigger}`);
      }
      // The same launch succeeds once nothing stands in its way.
      const again = await api(instancesOf(own.t.id), { token: own.token, body: { agentId: own.agentId } });
      expect(again.status, JSON.stringify(again.body)).toBe(201);
    } finally {
      idle.close();
    }
  });

  it("409 credential_expired for a credential past its expiry, and nothing written", async () => {
    const own = await setUpRuntime();
    const past = await api(`${tenantBase(own.t.id)}/credentials/${own.credentialId}`, {
      method: "PATCH",
      token: own.token,
      body: { expiresAt: new Date(Date.now() - 60_000).toISOString() },
    });
    expect(past.status, JSON.stringify(past.body)).toBe(200);
    const before = await agentPrincipals(own.t.id);
    const res = await api(instancesOf(own.t.id), { token: own.token, body: { agentId: own.agentId } });
    expectError(res, 409, "credential_expired");
    expect(await instanceRows(own.agentId)).toEqual([]);
    expect(await agentPrincipals(own.t.id)).toEqual(before);
    expect(await agentStateGrants(own.t.id)).toEqual([]);
  });

  it("409 conflict for a stopped definition; 404 for an unknown or another tenant's agent", async () => {
    const agent = await createAgent(r);
    await ok(`${tenantBase(r.t.id)}/agents/definitions/${agent.id}`, r.token, undefined, "DELETE");
    expectError(await api(instancesOf(r.t.id), { token: r.token, body: { agentId: agent.id } }), 409, "conflict");
    expectError(
      await api(instancesOf(r.t.id), { token: r.token, body: { agentId: "agt_0123456789abcdef0123456789abcdef" } }),
      404,
      "not_found",
    );
    const other = await setUpRuntime();
    expectError(await api(instancesOf(r.t.id), { token: r.token, body: { agentId: other.agentId } }), 404, "not_found");
    expect(await instanceRows(other.agentId)).toEqual([]);
  });

  it("403 insufficient_grants for an invoker grant the caller does not hold; 403 without instance create", async () => {
    const launcher = await addMember(r.t, "member");
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId: launcher.principalId,
      resource: "instance:*",
      action: "create",
      effect: "allow",
    });
    // Launching charges the tenant's default wallet: the launcher must be allowed to spend from it.
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId: launcher.principalId,
      resource: `wallet:${r.walletId}`,
      action: "write",
      effect: "allow",
    });
    const agent = await createAgent(r);
    const res = await api(instancesOf(r.t.id), {
      token: launcher.token,
      body: { agentId: agent.id, invokerGrants: [{ resource: "wallet:*", action: "manage" }] },
    });
    expectError(res, 403, "insufficient_grants");
    expect(await instanceRows(agent.id)).toEqual([]);
    expect(await sessionsOf(agent.id)).toEqual([]);

    // What the caller holds, it may hand on (here `*` read through the member role).
    const handed = await api(instancesOf(r.t.id), {
      token: launcher.token,
      body: { agentId: agent.id, invokerGrants: [{ resource: "agent:*", action: "read" }] },
    });
    expect(handed.status, JSON.stringify(handed.body)).toBe(201);
    await sidecar.instance(handed.body.id);
    const agentGrants = await db
      .select()
      .from(grant)
      .where(
        eq(
          grant.principalId,
          (await db.select().from(principal).where(eq(principal.refId, handed.body.id)))[0]?.id ?? "",
        ),
      );
    expect(agentGrants).toEqual([
      expect.objectContaining({ resource: "agent:*", action: "read", effect: "allow", origin: "invoker" }),
    ]);

    const reader = await addMember(r.t, "member");
    expectError(await api(instancesOf(r.t.id), { token: reader.token, body: { agentId: agent.id } }), 403, "forbidden");
    expect((await instanceRows(agent.id)).length).toBe(1);
  });

  it("400 for a bad body", async () => {
    for (const body of [
      {},
      { agentId: "" },
      { agentId: 42 },
      { agentId: r.agentId, invokerGrants: "all" },
      { agentId: r.agentId, invokerGrants: [{ resource: "agent:*" }] },
      { agentId: r.agentId, invokerGrants: [{ resource: "agent:*", action: "read", effect: "maybe" }] },
    ]) {
      const res = await api(instancesOf(r.t.id), { token: r.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
    }
    expectError(await api(instancesOf(r.t.id), { token: r.token, body: "{not json" }), 400, "invalid_json");
    const conditions = await api(instancesOf(r.t.id), {
      token: r.token,
      body: { agentId: r.agentId, invokerGrants: [{ resource: "agent:*", action: "read", conditions: { bogus: 1 } }] },
    });
    expectError(conditions, 400, "invalid_conditions");
    expect((await instanceRows(r.agentId)).length).toBe(1);
  });
});

describe("a launch no sidecar runs", SLOW, () => {
  it("502 sidecar_unavailable with nothing written when no sidecar of the tenant is online", async () => {
    const r = await setUpRuntime();
    const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: r.agentId } });
    expectError(res, 502, "sidecar_unavailable");
    expect(await instanceRows(r.agentId)).toEqual([]);
    expect(await agentPrincipals(r.t.id)).toEqual([]);
    expect(await sessionsOf(r.agentId)).toEqual([]);
    expect(await agentStateGrants(r.t.id)).toEqual([]);
  });

  it("502 when the sidecar is marked online but has no control channel: kept as error, nothing active", async () => {
    const r = await setUpRuntime();
    await ok(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}/heartbeat`, r.token, undefined, "POST");
    const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: r.agentId } });
    expectError(res, 502, "sidecar_unavailable");
    const [row] = await instanceRows(r.agentId);
    expect(row).toMatchObject({ status: "error", sessionId: null, sidecarId: r.sidecarId });
    expect(row?.endedAt).toBeInstanceOf(Date);
    expect((await agentPrincipals(r.t.id)).map((p) => p.status)).toEqual(["deactivated"]);
    expect((await sessionsOf(r.agentId)).map((s) => s.status)).toEqual(["ended"]);
    const list = await api(`${instancesOf(r.t.id)}?status=running`, { token: r.token });
    expect(list.body.data).toEqual([]);
    // The record keeps its creator grant (the instance row is kept too, as `error`).
    expect((await agentStateGrants(r.t.id)).map((g) => g.resource)).toEqual([`agent-state:${row?.id}`]);
    // Its health still answers: unhealthy, not ready, since nothing serves it.
    const health = await api(`${instancesOf(r.t.id)}/${row?.id}/health`, { token: r.token });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ liveness: "unhealthy", readiness: "not_ready" });
  });

  it("502 when the sidecar answers agent.error: the instance is error, the channel closed", async () => {
    const r = await setUpRuntime();
    const sidecar = await TestSidecar.connect(r.secret, { deploy: "error" });
    try {
      const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: r.agentId } });
      const error = expectError(res, 502, "sidecar_unavailable");
      expect(error.message).toContain("refuses to deploy");
      const [row] = await instanceRows(r.agentId);
      expect(row).toMatchObject({ status: "error", sessionId: null });
      const channel = await sidecar.instance(row?.id as string);
      expect(channel.log.frames.map((f) => f.type)).toEqual(["agent.deploy"]);
      await until("the channel to close", async () => channel.closeEvents.length > 0);
      expect(channel.closeEvents[0]?.code).toBe(4010);
      expect((await agentPrincipals(r.t.id)).map((p) => p.status)).toEqual(["deactivated"]);
    } finally {
      sidecar.close();
    }
  });
});
