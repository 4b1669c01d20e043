/**
 * The instance runtime's REST surface over HTTP, with real D1 and Durable Objects, and a protocol-level
 * test sidecar (support/test-sidecar.ts) on the real WebSocket channels: launch, every instance route
 * with its 400/403/404/409/410 answers, mail threading, health, events from the sidecar, and the
 * sidecar channels' authentication.
 */
import { env, exports } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { agentInstance, agentSession, grant, principal, sessionMail } from "../../src/db/schema";
import { addMember, api, createTenant, expectError, type TestTenant, type TestUser, unique } from "./support/api";
import { type TestInstanceChannel, TestSidecar, upgrade } from "./support/test-sidecar";

const db = getDb(env);
const SLOW = { timeout: 40_000 };
const tenantBase = (tenantId: string) => `/api/tenants/${tenantId}`;
const instancesOf = (tenantId: string) => `${tenantBase(tenantId)}/agents/instances`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

type Runtime = {
  t: TestTenant;
  token: string;
  providerId: string;
  credentialId: string;
  agentId: string;
  sidecarId: string;
  secret: string;
};

async function ok(path: string, token: string, body?: unknown, method?: string) {
  const res = await api(path, { token, body, ...(method ? { method } : {}) });
  expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

async function createAgent(r: Pick<Runtime, "t" | "token">, fields: Record<string, unknown> = {}) {
  return (await ok(`${tenantBase(r.t.id)}/agents/definitions`, r.token, {
    name: unique("Echo "),
    systemPrompt: "You repeat what you are told.",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
    ...fields,
  })) as { id: string; name: string };
}

/** A tenant with an echo provider, a tenant credential, an agent definition and a registered sidecar. */
async function setUpRuntime(): Promise<Runtime> {
  const t = await createTenant();
  const token = t.owner.token;
  const base = tenantBase(t.id);
  const provider = await ok(`${base}/providers`, token, {
    name: "echo",
    plugin: "echo",
    metadata: { baseURL: "http://127.0.0.1/echo" },
  });
  const credential = await ok(`${base}/credentials`, token, {
    name: "echo-key",
    type: "api_key",
    providerId: provider.id,
    secret: "echo-secret-value",
  });
  const agent = await createAgent({ t, token });
  const sidecar = await ok(`${base}/sidecars`, token, { name: unique("host-"), capacity: 50 });
  return {
    t,
    token,
    providerId: provider.id,
    credentialId: credential.id,
    agentId: agent.id,
    sidecarId: sidecar.id,
    secret: sidecar.secret,
  };
}

async function launch(r: Runtime, sidecar: TestSidecar, agentId = r.agentId) {
  const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const channel = await sidecar.instance(res.body.id);
  return { instance: res.body as Record<string, any> & { id: string; address: string }, channel };
}

const instanceRows = (agentId: string) => db.select().from(agentInstance).where(eq(agentInstance.agentId, agentId));
const agentPrincipals = (tenantId: string) =>
  db
    .select()
    .from(principal)
    .where(and(eq(principal.tenantId, tenantId), eq(principal.kind, "agent")));
const sessionsOf = (agentId: string) => db.select().from(agentSession).where(eq(agentSession.agentId, agentId));
const mailRows = (instanceId: string) => db.select().from(sessionMail).where(eq(sessionMail.instanceId, instanceId));
const agentStateGrants = (tenantId: string) =>
  db
    .select()
    .from(grant)
    .where(eq(grant.tenantId, tenantId))
    .then((rows) => rows.filter((g) => g.resource.startsWith("agent-state:ins_")));

/** An instance's SSE stream through the Worker, read as text. */
async function subscribe(path: string, token: string, query = "") {
  const res = await exports.default.fetch(
    new Request(`http://hub.test${path}/events${query}`, { headers: { authorization: `Bearer ${token}` } }),
  );
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  // Chunks are kept apart and joined on demand: appending megabytes to one string and searching it after
  // every chunk would make a large stream quadratic.
  const parts: string[] = [];
  const text = () => parts.join("");
  return {
    res,
    /** Reads until the text so far contains `needle` (or the stream ends); returns all of it. */
    async until(needle: string): Promise<string> {
      let tail = text();
      while (!tail.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = decoder.decode(value, { stream: true });
        parts.push(chunk);
        tail = tail.slice(-needle.length) + chunk;
      }
      return text();
    },
    /** The next chunk alone. */
    async nextChunk(): Promise<string> {
      return decoder.decode((await reader.read()).value);
    },
    /** Everything until the stream ends, and how it ended: closed by the hub, or cut off. */
    async rest(): Promise<{ text: string; end: "closed" | "cut" }> {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return { text: text(), end: "closed" };
          parts.push(decoder.decode(value, { stream: true }));
        }
      } catch {
        return { text: text(), end: "cut" };
      }
    },
    close: () => reader.cancel(),
  };
}

/** The text of a JMAP-style mail view. */
const textOf = (mail: any) => mail.bodyValues[mail.textBody[0].partId].value as string;

// ---------------------------------------------------------------------------------------------
// Launch
// ---------------------------------------------------------------------------------------------

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
    expect(channel.log.frames.slice(0, 2).map((f) => f.type)).toEqual(["agent.deploy", "session.start"]);
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

    // §8.5: the definition's creator may read the instance's state.
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
    // Its health answers (as the reference's does): nothing serves it.
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

// ---------------------------------------------------------------------------------------------
// Every instance route: happy path, 400, 403, 404, other tenants
// ---------------------------------------------------------------------------------------------

describe("instance routes", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let live: { id: string; address: string; sessionId: string };
  let channel: TestInstanceChannel;
  let otherAgentInstanceId: string;
  let stoppedId: string;
  let outsider: TestUser;
  let otherTenant: TestTenant;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
    const launched = await launch(r, sidecar);
    live = launched.instance as typeof live;
    channel = launched.channel;
    const otherAgent = await createAgent(r);
    otherAgentInstanceId = (await launch(r, sidecar, otherAgent.id)).instance.id;
    stoppedId = (await launch(r, sidecar)).instance.id;
    expect((await api(`${instancesOf(r.t.id)}/${stoppedId}`, { method: "DELETE", token: r.token })).status).toBe(204);
    otherTenant = await createTenant();
    outsider = otherTenant.owner;
  }, 40_000);

  afterAll(() => sidecar?.close());

  it("lists with agentId and status filters, newest first; 400 for a bad filter", async () => {
    const all = await api(instancesOf(r.t.id), { token: r.token });
    expect(all.status).toBe(200);
    expect(all.body.data.map((i: { id: string }) => i.id)).toEqual([stoppedId, otherAgentInstanceId, live.id]);
    expect(all.body.nextCursor).toBeNull();
    const shown = all.body.data.find((i: { id: string }) => i.id === live.id);
    expect(shown).toMatchObject({ status: "running", agentId: r.agentId, sidecarId: r.sidecarId });

    const byAgent = await api(`${instancesOf(r.t.id)}?agentId=${r.agentId}`, { token: r.token });
    expect(byAgent.body.data.map((i: { id: string }) => i.id)).toEqual([stoppedId, live.id]);
    const running = await api(`${instancesOf(r.t.id)}?status=running&agentId=${r.agentId}`, { token: r.token });
    expect(running.body.data.map((i: { id: string }) => i.id)).toEqual([live.id]);
    const stopped = await api(`${instancesOf(r.t.id)}?status=stopped`, { token: r.token });
    expect(stopped.body.data).toEqual([
      expect.objectContaining({ id: stoppedId, status: "stopped", sessionId: null, stopReason: "instance_stopped" }),
    ]);
    const paged = await api(`${instancesOf(r.t.id)}?limit=2`, { token: r.token });
    expect(paged.body.data).toHaveLength(2);
    const rest = await api(`${instancesOf(r.t.id)}?limit=2&cursor=${paged.body.nextCursor}`, { token: r.token });
    expect(rest.body.data.map((i: { id: string }) => i.id)).toEqual([live.id]);

    expectError(await api(`${instancesOf(r.t.id)}?status=sleeping`, { token: r.token }), 400, "validation_failed");
    expectError(
      await api(`${instancesOf(r.t.id)}?agentId=${"a".repeat(200)}`, { token: r.token }),
      400,
      "validation_failed",
    );
    expectError(await api(`${instancesOf(r.t.id)}?limit=0`, { token: r.token }), 400, "validation_failed");
  });

  it("gets one instance with its runtime status; a stopped one without", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${live.id}`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: live.id, status: "running", runtimeStatus: "idle", address: live.address });
    const stopped = await api(`${instancesOf(r.t.id)}/${stoppedId}`, { token: r.token });
    expect(stopped.body).toMatchObject({ id: stoppedId, status: "stopped", endedAt: expect.any(String) });
    expect(stopped.body.runtimeStatus).toBeUndefined();
  });

  it("health is ok while the sidecar holds the channel", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/health`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ liveness: "ok", readiness: "ok", lastCheckedAt: expect.any(String) });
    expectError(await api(`${instancesOf(r.t.id)}/${stoppedId}/health`, { token: r.token }), 410, "gone");
  });

  it("offerings: a plain array of the definition's offerings, also for a stopped instance", async () => {
    const empty = await api(`${instancesOf(r.t.id)}/${otherAgentInstanceId}/offerings`, { token: r.token });
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual([]);
    const first = await ok(`${tenantBase(r.t.id)}/offerings`, r.token, { agentId: r.agentId, name: "Basic" });
    const second = await ok(`${tenantBase(r.t.id)}/offerings`, r.token, { agentId: r.agentId, name: "Premium" });
    for (const id of [live.id, stoppedId]) {
      const res = await api(`${instancesOf(r.t.id)}/${id}/offerings`, { token: r.token });
      expect(res.status).toBe(200);
      expect(Array.isArray(res.body)).toBe(true);
      expect(res.body).toEqual([
        expect.objectContaining({ id: first.id, agentId: r.agentId, agentName: first.agentName, name: "Basic" }),
        expect.objectContaining({ id: second.id, agentId: r.agentId, name: "Premium" }),
      ]);
    }
  });

  it("mail-key: the same ASCII-armored public key every time", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/mail-key`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/pgp-keys");
    expect(res.body).toContain("-----BEGIN PGP PUBLIC KEY BLOCK-----");
    expect(res.body).not.toContain("PRIVATE");
    const again = await api(`${instancesOf(r.t.id)}/${live.id}/mail-key`, { token: r.token });
    expect(again.body).toBe(res.body);
    const other = await api(`${instancesOf(r.t.id)}/${otherAgentInstanceId}/mail-key`, { token: r.token });
    expect(other.body).not.toBe(res.body);
  });

  it("events: an SSE stream that starts with retry:, 400 for a bad cursor, 410 once stopped", async () => {
    const replayed = await subscribe(`${instancesOf(r.t.id)}/${live.id}`, r.token, "?cursor=0");
    const { res } = replayed;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(res.headers.get("cache-control")).toContain("no-cache");
    const text = await replayed.until("instance.running");
    await replayed.close();
    expect(text.startsWith("retry: 3000\n\n")).toBe(true);
    // Replayed from the start: every event has an id and the agent.event name.
    expect(text).toMatch(/id: 1\nevent: agent\.event\ndata: \{"type":"instance\.launched","seq":1/);
    expect(text).toMatch(/id: \d+\nevent: agent\.event\ndata: \{"type":"instance\.running"/);

    // Without a cursor the stream starts live: the first bytes are the retry hint.
    const fresh = await subscribe(`${instancesOf(r.t.id)}/${live.id}`, r.token);
    expect(await fresh.nextChunk()).toBe("retry: 3000\n\n");
    await fresh.close();

    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/events?cursor=abc`, { token: r.token }),
      400,
      "validation_failed",
    );
    expectError(await api(`${instancesOf(r.t.id)}/${stoppedId}/events`, { token: r.token }), 410, "gone");
  });

  it("sync: 202 sent, and the sidecar gets sync.request", async () => {
    const from = channel.log.frames.length;
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/sync`, { method: "POST", token: r.token });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ status: "sent" });
    const frame = await channel.log.next("sync.request", from);
    expect(frame).toMatchObject({ agentAddress: live.address, transferId: expect.any(String) });
    expectError(
      await api(`${instancesOf(r.t.id)}/${stoppedId}/sync`, { method: "POST", token: r.token }),
      409,
      "conflict",
    );
  });

  it("abort: 204 once the sidecar acks session.abort; 409 when not running; 400 for a bad reason", async () => {
    let from = channel.log.frames.length;
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/abort`, { token: r.token, body: {} });
    expect(res.status, JSON.stringify(res.body)).toBe(204);
    expect(await channel.log.next("session.abort", from)).toMatchObject({
      agentAddress: live.address,
      reason: "user_disconnect",
      requestId: expect.any(String),
    });
    from = channel.log.frames.length;
    const killed = await api(`${instancesOf(r.t.id)}/${live.id}/abort`, {
      token: r.token,
      body: { reason: "admin_kill" },
    });
    expect(killed.status).toBe(204);
    expect((await channel.log.next("session.abort", from)).reason).toBe("admin_kill");

    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/abort`, { token: r.token, body: { reason: "boredom" } }),
      400,
      "validation_failed",
    );
    expectError(await api(`${instancesOf(r.t.id)}/${stoppedId}/abort`, { token: r.token, body: {} }), 409, "conflict");
  });

  it("mail: POST signs and delivers to the sidecar, GET lists it; 400 for a bad body; 409 when stopped", async () => {
    const from = channel.log.frames.length;
    const sent = await api(`${instancesOf(r.t.id)}/${live.id}/mail`, {
      token: r.token,
      body: { content: "hello agent", subject: "Greetings" },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    const domain = live.address.split("@")[1];
    expect(sent.body).toMatchObject({
      id: expect.stringMatching(/^sml_/),
      sessionId: live.sessionId,
      instanceId: live.id,
      direction: "inbound",
      status: "delivered",
      subject: "Greetings",
      from: [{ name: r.t.owner.name, email: `${r.t.owner.userId}@${domain}` }],
      to: [{ email: live.address }],
      messageId: `<${sent.body.id}@${domain}>`,
    });
    expect(textOf(sent.body)).toContain("hello agent");
    const inbound = await channel.log.next("mail.inbound", from);
    expect(inbound).toMatchObject({ agentAddress: live.address, mailId: sent.body.id });
    const mime = new TextDecoder().decode(Uint8Array.from(atob(inbound.rawMessage), (c) => c.charCodeAt(0)));
    expect(mime).toContain("multipart/signed");
    expect(mime).toContain("hello agent");

    const list = await api(`${instancesOf(r.t.id)}/${live.id}/mail`, { token: r.token });
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([expect.objectContaining({ id: sent.body.id, direction: "inbound" })]);
    expect(list.body.nextCursor).toBeNull();

    // A part of it as a blob: the signed text part is part 1.
    const blob = await api(`${instancesOf(r.t.id)}/blobs/blob_${sent.body.id}_1`, { token: r.token });
    expect(blob.status).toBe(200);
    expect(String(blob.body)).toContain("hello agent");
    expect(blob.headers.get("content-disposition")).toMatch(/^attachment/);
    expectError(await api(`${instancesOf(r.t.id)}/blobs/blob_${sent.body.id}_9`, { token: r.token }), 404, "not_found");

    for (const body of [{}, { content: "" }, { content: 5 }, { content: "x", subject: "s".repeat(501) }]) {
      const res = await api(`${instancesOf(r.t.id)}/${live.id}/mail`, { token: r.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expectError(
      await api(`${instancesOf(r.t.id)}/${stoppedId}/mail`, { token: r.token, body: { content: "hi" } }),
      409,
      "conflict",
    );
    expect((await mailRows(live.id)).length).toBe(1);
    expect(await mailRows(stoppedId)).toEqual([]);
  });

  it("blobs: a bad id is 400 before anything else; an unknown mail is 404", async () => {
    const noRole = await addMember(r.t, null);
    for (const token of [r.token, noRole.token]) {
      expectError(await api(`${instancesOf(r.t.id)}/blobs/bad-format`, { token }), 400, "bad_request");
      expectError(await api(`${instancesOf(r.t.id)}/blobs/blob_sml_x_1.a`, { token }), 400, "bad_request");
    }
    expectError(
      await api(`${instancesOf(r.t.id)}/blobs/blob_sml_0123456789abcdef0123456789abcdef_1`, { token: r.token }),
      404,
      "not_found",
    );
  });

  it("turns: an empty page before any event, 400 for a bad page", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${otherAgentInstanceId}/turns`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [], nextCursor: null });
    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/turns?limit=abc`, { token: r.token }),
      400,
      "validation_failed",
    );
    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/mail?cursor=%%%`, { token: r.token }),
      400,
      "invalid_cursor",
    );
  });

  /** Every route on one instance id: [method, path suffix, body]. */
  const routes = (id: string): [string, string, unknown][] => [
    ["GET", `/${id}`, undefined],
    ["GET", `/${id}/health`, undefined],
    ["GET", `/${id}/offerings`, undefined],
    ["GET", `/${id}/mail`, undefined],
    ["GET", `/${id}/mail-key`, undefined],
    ["GET", `/${id}/turns`, undefined],
    ["GET", `/${id}/events`, undefined],
    ["POST", `/${id}/mail`, { content: "hi" }],
    ["POST", `/${id}/abort`, {}],
    ["POST", `/${id}/sync`, undefined],
    ["DELETE", `/${id}`, undefined],
  ];

  it("404 for an unknown instance on every route", async () => {
    for (const [method, suffix, body] of routes("ins_0123456789abcdef0123456789abcdef")) {
      const res = await api(`${instancesOf(r.t.id)}${suffix}`, { method, token: r.token, body });
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body?.error?.code }).toEqual({
        route: `${method} ${suffix}`,
        status: 404,
        code: "not_found",
      });
    }
  });

  it("403 for a member without the grant on every route, and nothing is written or sent", async () => {
    const noRole = await addMember(r.t, null);
    const reader = await addMember(r.t, "member");
    const frames = channel.log.frames.length;
    const mails = (await mailRows(live.id)).length;
    for (const [method, suffix, body] of routes(live.id)) {
      const res = await api(`${instancesOf(r.t.id)}${suffix}`, { method, token: noRole.token, body });
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body?.error?.code }).toEqual({
        route: `${method} ${suffix}`,
        status: 403,
        code: "forbidden",
      });
    }
    expectError(await api(instancesOf(r.t.id), { token: noRole.token }), 403, "forbidden");
    // The seeded member role reads everything but may not write, manage or create.
    for (const [method, suffix, body] of routes(live.id).filter(([m]) => m !== "GET")) {
      const res = await api(`${instancesOf(r.t.id)}${suffix}`, { method, token: reader.token, body });
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body?.error?.code }).toEqual({
        route: `${method} ${suffix}`,
        status: 403,
        code: "forbidden",
      });
    }
    expect((await api(`${instancesOf(r.t.id)}/${live.id}/turns`, { token: reader.token })).status).toBe(200);
    await channel.settled();
    expect(channel.log.frames.slice(frames).map((f) => f.type)).toEqual(["pong"]);
    expect((await mailRows(live.id)).length).toBe(mails);
    const [row] = await db.select().from(agentInstance).where(eq(agentInstance.id, live.id));
    expect(row?.status).toBe("running");

    // The blob route checks the mail's instance itself.
    const [mail] = await mailRows(live.id);
    expectError(
      await api(`${instancesOf(r.t.id)}/blobs/blob_${mail?.id}_1`, { token: noRole.token }),
      403,
      "forbidden",
    );
    expect((await api(`${instancesOf(r.t.id)}/blobs/blob_${mail?.id}_1`, { token: reader.token })).status).toBe(200);
  });

  it("404 with no data for a user of another tenant, on every route", async () => {
    const [mail] = await mailRows(live.id);
    const frames = channel.log.frames.length;
    const blobPath = `/blobs/blob_${mail?.id}_1`;
    // An outsider on this tenant's paths, and another tenant's owner on their own tenant's paths.
    for (const [tenantId, token] of [
      [r.t.id, outsider.token],
      [otherTenant.id, otherTenant.owner.token],
    ] as const) {
      const all: [string, string, unknown][] = [
        ...routes(live.id),
        ["GET", "", undefined],
        ["POST", "", { agentId: r.agentId }],
        ["GET", blobPath, undefined],
      ];
      for (const [method, suffix, body] of all) {
        const res = await api(`${instancesOf(tenantId)}${suffix}`, { method, token, body });
        if (tenantId === otherTenant.id && method === "GET" && suffix === "") {
          // Their own list: nothing of this tenant in it.
          expect(res.body).toEqual({ data: [], nextCursor: null });
          continue;
        }
        expect({ route: `${method} ${suffix}`, status: res.status }).toEqual({
          route: `${method} ${suffix}`,
          status: 404,
        });
        const text = JSON.stringify(res.body);
        expect(text).not.toContain(live.address);
        expect(text).not.toContain(live.sessionId);
        expect(text).not.toContain("PGP");
      }
    }
    await channel.settled();
    expect(channel.log.frames.slice(frames).map((f) => f.type)).toEqual(["pong"]);
    const [row] = await db.select().from(agentInstance).where(eq(agentInstance.id, live.id));
    expect(row?.status).toBe("running");
  });

  it("DELETE: the sidecar undeploys, 204, then 409; the instance reads as stopped", async () => {
    const target = await launch(r, sidecar);
    const id = target.instance.id;
    const res = await api(`${instancesOf(r.t.id)}/${id}`, { method: "DELETE", token: r.token });
    expect(res.status).toBe(204);
    expect(await target.channel.log.next("agent.undeploy")).toMatchObject({
      agentAddress: target.instance.address,
      reason: "instance_stopped",
    });
    await until("the channel to close", async () => target.channel.closeEvents.length > 0);
    expect(target.channel.closeEvents[0]?.code).toBe(4010);
    const shown = await api(`${instancesOf(r.t.id)}/${id}`, { token: r.token });
    expect(shown.body).toMatchObject({ status: "stopped", sessionId: null, stopReason: "instance_stopped" });
    const [agentPrincipal] = await db.select().from(principal).where(eq(principal.refId, id));
    expect(agentPrincipal?.status).toBe("deactivated");
    const [session] = await db.select().from(agentSession).where(eq(agentSession.id, target.instance.sessionId));
    expect(session?.status).toBe("ended");
    expectError(await api(`${instancesOf(r.t.id)}/${id}`, { method: "DELETE", token: r.token }), 409, "conflict");
    expectError(await api(`${instancesOf(r.t.id)}/${id}/health`, { token: r.token }), 410, "gone");
    // History stays readable.
    expect((await api(`${instancesOf(r.t.id)}/${id}/turns`, { token: r.token })).status).toBe(200);
    expect((await api(`${instancesOf(r.t.id)}/${id}/mail`, { token: r.token })).status).toBe(200);
  });

  it("two DELETEs at once: one stops it (204), the other is a 409, and the sidecar hears it once", async () => {
    const target = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${target.instance.id}`;
    const started = Date.now();
    const results = await Promise.all([1, 2].map(() => api(path, { method: "DELETE", token: r.token })));
    expect(results.map((x) => x.status).sort()).toEqual([204, 409]);
    expect(Date.now() - started).toBeLessThan(5_000);
    await target.channel.settled().catch(() => {});
    expect(target.channel.log.frames.filter((f) => f.type === "agent.undeploy")).toHaveLength(1);
  });

  it("a grant change reaches the running instance at once as grants.update", async () => {
    const target = await launch(r, sidecar);
    const [agentPrincipal] = await db.select().from(principal).where(eq(principal.refId, target.instance.id));
    const mark = target.channel.log.frames.length;
    const created = await api(`/api/tenants/${r.t.id}/grants`, {
      token: r.token,
      body: { principalId: agentPrincipal?.id, resource: "tool:search", action: "write", effect: "allow" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const update = await target.channel.log.next("grants.update", mark);
    expect(update.grants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: created.body.id, resource: "tool:search", action: "write" }),
      ]),
    );
    const mark2 = target.channel.log.frames.length;
    await api(`/api/tenants/${r.t.id}/grants/${created.body.id}`, { method: "DELETE", token: r.token });
    const after = await target.channel.log.next("grants.update", mark2);
    expect(after.grants.map((g: { id: string }) => g.id)).not.toContain(created.body.id);
    await api(`${instancesOf(r.t.id)}/${target.instance.id}`, { method: "DELETE", token: r.token });
  });

  it("deleting the definition stops its instances for real: the sidecar undeploys them", async () => {
    const agentId = (await createAgent(r)).id;
    const target = await launch(r, sidecar, agentId);
    const res = await api(`/api/tenants/${r.t.id}/agents/definitions/${agentId}`, { method: "DELETE", token: r.token });
    expect(res.status).toBe(204);
    expect(await target.channel.log.next("agent.undeploy")).toMatchObject({ reason: "agent_deleted" });
    const shown = await api(`${instancesOf(r.t.id)}/${target.instance.id}`, { token: r.token });
    expect(shown.body).toMatchObject({ status: "stopped", stopReason: "agent_deleted" });
    expectError(await api(`${instancesOf(r.t.id)}/${target.instance.id}/events`, { token: r.token }), 410, "gone");
  });
});

// ---------------------------------------------------------------------------------------------
// Mail threading (§8.5), delivery while the sidecar is away
// ---------------------------------------------------------------------------------------------

describe("mail threading", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  const send = async (id: string, content: string) => {
    const res = await api(`${instancesOf(r.t.id)}/${id}/mail`, { token: r.token, body: { content } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const idOf = (mail: { id: string }, address: string) => `<${mail.id}@${address.split("@")[1]}>`;

  it("the first message starts a thread; later ones reply to the latest delivered one", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const first = await send(instance.id, "one");
    expect(first.inReplyTo).toBeNull();
    expect(first.references).toEqual([]);
    const second = await send(instance.id, "two");
    expect(second.inReplyTo).toBe(idOf(first, instance.address));
    expect(second.references).toEqual([idOf(first, instance.address)]);
    const third = await send(instance.id, "three");
    expect(third.inReplyTo).toBe(idOf(second, instance.address));
    expect(third.references).toEqual([idOf(first, instance.address), idOf(second, instance.address)]);
    // What the sidecar received carries the same headers.
    const raw = atob(channel.log.ofType("mail.inbound")[1]?.rawMessage);
    expect(raw).toContain(`In-Reply-To: ${idOf(first, instance.address)}`);
    expect(raw).toContain(`References: ${idOf(first, instance.address)}`);
    const listed = await api(`${instancesOf(r.t.id)}/${instance.id}/mail`, { token: r.token });
    expect(listed.body.data.map((m: { id: string }) => m.id)).toEqual([third.id, second.id, first.id]);
  });

  it("without history, the sidecar's connector state threads the message; history wins after", async () => {
    const { instance, channel } = await launch(r, sidecar);
    channel.connectorState({
      threadRoot: "<root@peer.example>",
      lastMessageId: "<last@peer.example>",
      replyTo: "peer@peer.example",
      cc: [],
      subject: "Ongoing",
    });
    await channel.settled();
    const first = await send(instance.id, "joining the thread");
    expect(first.inReplyTo).toBe("<last@peer.example>");
    expect(first.references).toEqual(["<root@peer.example>"]);
    const second = await send(instance.id, "and again");
    expect(second.inReplyTo).toBe(idOf(first, instance.address));
    expect(second.references).toEqual([idOf(first, instance.address)]);

    // A cleared connector state (null) means no thread for a fresh instance.
    const fresh = await launch(r, sidecar);
    fresh.channel.connectorState(null);
    await fresh.channel.settled();
    const alone = await send(fresh.instance.id, "hi");
    expect(alone.inReplyTo).toBeNull();
    expect(alone.references).toEqual([]);
  });

  it("mail sent while the sidecar is away is kept pending, threads nothing, and arrives in order after the challenge", async () => {
    const { instance, channel } = await launch(r, sidecar);
    channel.drop();
    await until("the hub to see the drop", async () => {
      const health = await api(`${instancesOf(r.t.id)}/${instance.id}/health`, { token: r.token });
      return health.body.liveness === "unhealthy";
    });
    const first = await send(instance.id, "are you there");
    expect(first.status).toBe("pending");
    expect(first.inReplyTo).toBeNull();
    const second = await send(instance.id, "still waiting");
    expect(second.status).toBe("pending");
    // Only delivered mail threads: the pending first one is not referenced.
    expect(second.inReplyTo).toBeNull();
    expect(second.references).toEqual([]);
    const sync = await api(`${instancesOf(r.t.id)}/${instance.id}/sync`, { method: "POST", token: r.token });
    expect(sync.body).toEqual({ status: "queued" });

    const from = channel.log.frames.length;
    await channel.reconnect();
    await channel.log.next("sync.request", from);
    const after = channel.log.frames.slice(from).map((f) => f.type);
    expect(after).toEqual([
      "challenge",
      "grants.update",
      "sources.update",
      "mail.inbound",
      "mail.inbound",
      "sync.request",
    ]);
    expect(
      channel.log.frames
        .slice(from)
        .filter((f) => f.type === "mail.inbound")
        .map((f) => f.mailId),
    ).toEqual([first.id, second.id]);
    await until("the queued mail to be delivered", async () => {
      const rows = await mailRows(instance.id);
      return rows.length === 2 && rows.every((m) => m.status === "delivered");
    });
    const third = await send(instance.id, "welcome back");
    expect(third.status).toBe("delivered");
    expect(third.references).toEqual([idOf(first, instance.address), idOf(second, instance.address)]);
    expect(third.inReplyTo).toBe(idOf(second, instance.address));
  });
});

// ---------------------------------------------------------------------------------------------
// Health, turns and outbound mail from the sidecar's frames
// ---------------------------------------------------------------------------------------------

describe("what the sidecar reports", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  const health = async (id: string) => (await api(`${instancesOf(r.t.id)}/${id}/health`, { token: r.token })).body;

  /** A launched instance whose turn has streamed "Hel" and "lo" so far. */
  async function launchMidTurn() {
    const { instance, channel } = await launch(r, sidecar);
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.text.delta", { token: "Hel" });
    channel.event("inference.text.delta", { token: "lo" });
    await channel.settled();
    return { instance, channel, path: `${instancesOf(r.t.id)}/${instance.id}` };
  }

  it("health: ok while connected, unhealthy after the channel drops, ok after a proven reconnect, 410 once stopped", async () => {
    const { instance, channel } = await launch(r, sidecar);
    expect(await health(instance.id)).toMatchObject({ liveness: "ok", readiness: "ok" });
    channel.drop();
    await until("liveness unhealthy", async () => (await health(instance.id)).liveness === "unhealthy");
    expect((await health(instance.id)).readiness).toBe("ok");
    await channel.reconnect();
    expect(await health(instance.id)).toMatchObject({ liveness: "ok", readiness: "ok" });
    expect((await api(`${instancesOf(r.t.id)}/${instance.id}`, { method: "DELETE", token: r.token })).status).toBe(204);
    expectError(await api(`${instancesOf(r.t.id)}/${instance.id}/health`, { token: r.token }), 410, "gone");
  });

  it("while the sidecar is away: abort is 502, sync is queued, DELETE revokes over the control channel", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    channel.drop();
    await until("liveness unhealthy", async () => (await health(instance.id)).liveness === "unhealthy");
    expectError(await api(`${path}/abort`, { token: r.token, body: {} }), 502, "sidecar_unavailable");
    expect((await api(`${path}/sync`, { method: "POST", token: r.token })).body).toEqual({ status: "queued" });
    const from = sidecar.control.frames.length;
    expect((await api(path, { method: "DELETE", token: r.token })).status).toBe(204);
    expect(await sidecar.control.next("instance.revoke", from)).toEqual({
      type: "instance.revoke",
      instanceId: instance.id,
      reason: "instance_stopped",
    });
    // Stopped: the channel cannot come back.
    expect(await channel.open()).toBe(410);
  });

  it("abort answered with session.error is 502 sidecar_unavailable", async () => {
    const own = await setUpRuntime();
    const refusing = await TestSidecar.connect(own.secret, { abort: "error" });
    try {
      const { instance } = await launch(own, refusing);
      const res = await api(`${instancesOf(own.t.id)}/${instance.id}/abort`, { token: own.token, body: {} });
      expect(expectError(res, 502, "sidecar_unavailable").message).toContain("nothing to abort");
      expect((await api(`${instancesOf(own.t.id)}/${instance.id}`, { token: own.token })).body.status).toBe("running");
    } finally {
      refusing.close();
    }
  });

  it("a reconnect with the wrong key is refused with challenge.failed and stays unhealthy", async () => {
    const { instance, channel } = await launch(r, sidecar);
    channel.drop();
    await until("liveness unhealthy", async () => (await health(instance.id)).liveness === "unhealthy");
    channel.keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const from = channel.log.frames.length;
    expect(await channel.open()).toBe(101);
    expect(await channel.log.next("challenge.failed", from)).toMatchObject({ agentAddress: instance.address });
    await until("the channel to close", async () => channel.closeEvents.some((e) => e.code === 4003));
    expect(channel.log.ofType("grants.update")).toEqual([]);
    expect((await health(instance.id)).liveness).toBe("unhealthy");
  });

  it("a subscriber joining mid-turn gets the text so far, then only the live deltas", async () => {
    const { channel, path } = await launchMidTurn();
    const turnId = (await api(`${path}/turns`, { token: r.token })).body.data[0].id;
    const stream = await subscribe(path, r.token);
    expect(stream.res.status).toBe(200);
    channel.event("inference.text.delta", { token: "!" });
    const text = await stream.until('"token":"!"');
    await stream.close();
    const messages = text.split("\n\n").filter((m) => m.includes("data: "));
    const datas = messages.map((m) => JSON.parse(m.slice(m.indexOf("data: ") + 6)));
    expect(datas[0]).toMatchObject({ type: "inference.text.replay", data: { turnId, text: "Hello" } });
    expect(messages[0]).not.toContain("id: ");
    // After the replay, only what came later: the deltas already replayed are not sent again.
    expect(datas.slice(1).map((d) => [d.type, d.data.token])).toEqual([["inference.text.delta", "!"]]);
    expect(messages[1]).toMatch(/^id: \d+\n/);
  });

  it("a subscriber that stops reading is cut off once 8 MiB wait for it; the others get everything", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const stalled = await subscribe(path, r.token);
    const reading = await subscribe(path, r.token);
    const big = "x".repeat(256 * 1024);
    const count = 48; // 12 MiB
    for (let i = 0; i < count; i++) {
      channel.event("custom.big", { i, big });
      if (i % 2 === 1) {
        await channel.settled();
        await reading.until(`"i":${i},`);
      }
    }
    const bigOnes = (text: string) =>
      [
        ...text.matchAll(
          /^id: (\d+)\nevent: agent\.event\ndata: \{"type":"custom\.big","seq":\d+,"data":\{"i":(\d+),/gm,
        ),
      ].map((m) => ({ id: Number(m[1]), i: Number(m[2]) }));
    expect(bigOnes(await reading.until(`"i":${count - 1},`)).map((e) => e.i)).toEqual([...Array(count).keys()]);
    const cut = await stalled.rest();
    expect(cut.end).toBe("cut");
    const seen = bigOnes(cut.text);
    // It got a prefix (at most the 8 MiB backlog and what the pipes hold), in order, and nothing after.
    expect(seen.length).toBeLessThan(count);
    expect(seen.map((e) => e.i)).toEqual([...Array(seen.length).keys()]);
    // The instance is unaffected, and the cut-off client resumes from its last id without losing anything.
    expect((await api(path, { token: r.token })).body.status).toBe("running");
    const lastId = seen.at(-1)?.id ?? 0;
    const resumed = await subscribe(path, r.token, `?cursor=${lastId}`);
    const rest = bigOnes(await resumed.until(`"i":${count - 1},`));
    await resumed.close();
    await reading.close();
    expect(rest.map((e) => e.i)).toEqual([...Array(count).keys()].slice(seen.length));
  });

  it("inference events become a turn with parts; the runtime status follows", async () => {
    const { instance, channel, path } = await launchMidTurn();
    expect((await api(path, { token: r.token })).body.runtimeStatus).toBe("busy");
    const running = await api(`${path}/turns`, { token: r.token });
    expect(running.body.data).toEqual([expect.objectContaining({ status: "running", model: "echo", endedAt: null })]);
    // Deltas are streamed, never stored.
    expect(running.body.data[0].parts.map((p: { type: string }) => p.type)).toEqual(["step-start"]);

    channel.event("inference.done", {
      turn: {
        role: "assistant",
        model: "echo",
        content: [
          { type: "thinking", thinking: "they greet me" },
          { type: "text", text: "Hello" },
          { type: "tool_call", callId: "c1", name: "lookup", arguments: { q: "x" } },
        ],
      },
      usage: { input: 12, output: 5, cacheRead: 0, cacheWrite: 0, thinking: 0 },
    });
    channel.event("connector.reply", { content: "Hello" });
    await channel.settled();

    const turns = await api(`${path}/turns`, { token: r.token });
    expect(turns.status).toBe(200);
    expect(turns.body.data).toHaveLength(1);
    const [turn] = turns.body.data;
    expect(turn).toMatchObject({
      sessionId: instance.sessionId,
      instanceId: instance.id,
      model: "echo",
      status: "completed",
      inputTokens: 12,
      outputTokens: 5,
      endedAt: expect.any(String),
    });
    expect(
      turn.parts.map((p: { type: string; content: string | null; ordinal: number }) => [p.ordinal, p.type, p.content]),
    ).toEqual([
      [0, "step-start", null],
      [1, "reasoning", "they greet me"],
      [2, "text", "Hello"],
      [3, "tool", null],
      [4, "step-finish", null],
    ]);
    expect(turn.parts[0].metadata).toEqual({ model: "echo" });
    expect(turn.parts[3].metadata).toMatchObject({ kind: "call", callId: "c1", name: "lookup", arguments: { q: "x" } });
    expect((await api(path, { token: r.token })).body.runtimeStatus).toBe("idle");

    // The same events reached the stream, with the turn's summary.
    const stream = await subscribe(path, r.token, "?cursor=0");
    const text = await stream.until("turn.committed");
    await stream.close();
    for (const type of [
      "inference.start",
      "inference.text.delta",
      "inference.done",
      "connector.reply",
      "turn.committed",
    ]) {
      expect(text).toContain(`"type":"${type}"`);
    }
  });

  it("a turn cut off by the sidecar's drop is failed with sidecar_disconnected", async () => {
    const { instance, channel } = await launch(r, sidecar);
    channel.event("inference.start", { model: "echo" });
    await channel.settled();
    channel.drop();
    const turn = await until("the turn to fail", async () => {
      const turns = await api(`${instancesOf(r.t.id)}/${instance.id}/turns`, { token: r.token });
      return turns.body.data[0]?.status === "failed" ? turns.body.data[0] : undefined;
    });
    expect(turn.parts.at(-1)).toMatchObject({ type: "error", metadata: { category: "sidecar_disconnected" } });
  });

  it("mail.outbound is stored as the instance's outbound mail", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const asked = await api(`${instancesOf(r.t.id)}/${instance.id}/mail`, {
      token: r.token,
      body: { content: "ping?" },
    });
    expect(asked.status).toBe(201);
    const domain = instance.address.split("@")[1];
    const userAddress = `${r.t.owner.userId}@${domain}`;
    const reply = [
      `From: ${instance.address}`,
      `To: ${userAddress}`,
      "Subject: Re: your message",
      "Date: Wed, 25 Nov 2026 12:00:00 +0000",
      `Message-ID: <reply-1@${domain}>`,
      `In-Reply-To: <${asked.body.id}@${domain}>`,
      `References: <${asked.body.id}@${domain}>`,
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="b1"',
      "",
      "--b1",
      "Content-Type: text/plain; charset=utf-8",
      "",
      "pong!",
      "--b1",
      "Content-Type: text/plain",
      'Content-Disposition: attachment; filename="notes.txt"',
      "",
      "attached notes",
      "--b1--",
      "",
    ].join("\r\n");
    channel.outbound(reply, [userAddress]);
    await channel.settled();

    const list = await api(`${instancesOf(r.t.id)}/${instance.id}/mail`, { token: r.token });
    expect(list.body.data.map((m: { direction: string }) => m.direction)).toEqual(["outbound", "inbound"]);
    const [out] = list.body.data;
    expect(out).toMatchObject({
      instanceId: instance.id,
      sessionId: instance.sessionId,
      direction: "outbound",
      status: "delivered",
      from: [{ email: instance.address }],
      to: [{ email: userAddress }],
      subject: "Re: your message",
      messageId: `<reply-1@${domain}>`,
      inReplyTo: `<${asked.body.id}@${domain}>`,
    });
    expect(textOf(out)).toContain("pong!");
    expect(out.attachments).toEqual([
      expect.objectContaining({ name: "notes.txt", type: "text/plain", blobId: expect.stringMatching(/^blob_/) }),
    ]);
    const blob = await api(`${instancesOf(r.t.id)}/blobs/${out.attachments[0].blobId}`, { token: r.token });
    expect(blob.status).toBe(200);
    expect(blob.body).toBe("attached notes");
    expect(blob.headers.get("content-disposition")).toContain("notes.txt");

    // Garbage instead of base64 is ignored: the channel stays open and nothing is stored.
    channel.send({ type: "mail.outbound", agentAddress: instance.address, rawMessage: "%%%", recipients: [] });
    channel.send({ type: "no.such.frame" });
    await channel.settled();
    expect((await mailRows(instance.id)).length).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// Sidecar channels
// ---------------------------------------------------------------------------------------------

describe("sidecar channels", SLOW, () => {
  it("refuse an upgrade without a valid secret: 401, no socket", async () => {
    const r = await setUpRuntime();
    for (const path of [
      "/api/sidecars/connect",
      "/api/sidecars/instances/ins_0123456789abcdef0123456789abcdef/connect",
    ]) {
      for (const secret of [undefined, "", "ahs_wrong", r.secret.slice(0, -1), `x${r.secret}`]) {
        const res = await upgrade(path, secret);
        expect({ path, secret, status: res.status, socket: res.ws !== null }).toEqual({
          path,
          secret,
          status: 401,
          socket: false,
        });
        expect(res.body.error.code).toBe("unauthorized");
      }
    }
    const plain = await api("/api/sidecars/connect", { headers: { authorization: `Bearer ${r.secret}` } });
    expectError(plain, 426, "upgrade_required");
    const row = await api(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}`, { token: r.token });
    expect(row.body.status).toBe("offline");
  });

  it("instance channel: another sidecar 403, another tenant's or an unknown instance 404, a stopped one 410", async () => {
    const r = await setUpRuntime();
    const sidecar = await TestSidecar.connect(r.secret);
    try {
      const { instance } = await launch(r, sidecar);
      const path = `/api/sidecars/instances/${instance.id}/connect`;
      const second = await ok(`${tenantBase(r.t.id)}/sidecars`, r.token, { name: unique("host-") });
      const foreign = await upgrade(path, second.secret);
      expect({ status: foreign.status, socket: foreign.ws !== null, code: foreign.body.error.code }).toEqual({
        status: 403,
        socket: false,
        code: "forbidden",
      });
      const other = await setUpRuntime();
      const elsewhere = await upgrade(path, other.secret);
      expect({ status: elsewhere.status, code: elsewhere.body.error.code }).toEqual({ status: 404, code: "not_found" });
      const unknown = await upgrade("/api/sidecars/instances/ins_0123456789abcdef0123456789abcdef/connect", r.secret);
      expect({ status: unknown.status, code: unknown.body.error.code }).toEqual({ status: 404, code: "not_found" });

      // The instance's own channel was untouched by those attempts.
      expect((await api(`${instancesOf(r.t.id)}/${instance.id}/health`, { token: r.token })).body.liveness).toBe("ok");

      expect((await api(`${instancesOf(r.t.id)}/${instance.id}`, { method: "DELETE", token: r.token })).status).toBe(
        204,
      );
      const gone = await upgrade(path, r.secret);
      expect({ status: gone.status, socket: gone.ws !== null, code: gone.body.error.code }).toEqual({
        status: 410,
        socket: false,
        code: "gone",
      });
    } finally {
      sidecar.close();
    }
  });

  it("the control channel: hello names the sidecar, ready brings assignments of live instances back", async () => {
    const r = await setUpRuntime();
    const first = await TestSidecar.connect(r.secret);
    const { instance } = await launch(r, first);
    expect(first.control.frames[0]).toEqual({ type: "hello", sidecarId: r.sidecarId, tenantId: r.t.id });
    first.close();
    await until("the sidecar to be offline", async () => {
      const row = await api(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}`, { token: r.token });
      return row.body.status === "offline";
    });
    // A restarted sidecar lists what it still runs; the hub assigns live instances and revokes unknown ones.
    const restarted = await TestSidecar.connect(r.secret, {}, ["ins_ffffffffffffffffffffffffffffffff"]);
    try {
      const assign = await restarted.control.next("instance.assign");
      expect(assign).toEqual({
        type: "instance.assign",
        instanceId: instance.id,
        agentAddress: instance.address,
        path: `/api/sidecars/instances/${instance.id}/connect`,
      });
      expect(await restarted.control.next("instance.revoke")).toMatchObject({
        instanceId: "ins_ffffffffffffffffffffffffffffffff",
      });
      const row = await api(`${tenantBase(r.t.id)}/sidecars/${r.sidecarId}`, { token: r.token });
      expect(row.body.status).toBe("online");
    } finally {
      restarted.close();
    }
  });
});
