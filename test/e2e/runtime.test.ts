/**
 * The instance runtime end to end: the hub and the reference sidecar run as separate processes; a user
 * registers the sidecar, creates a provider, credential and agent, launches an instance, mails it, and
 * watches it over SSE. Also: resume with Last-Event-ID, and a sidecar killed mid-turn.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startSidecar } from "../../scripts/hub.mjs";
import { client, type Session } from "./support/hub-client";
import { SseClient } from "./support/sse";

const hubUrl = inject("hubUrl");
const hub = client(hubUrl);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Setup = { owner: Session; tenantId: string; agentId: string; sidecarId: string; secret: string; stateDir: string };

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function setUpTenant(): Promise<Setup> {
  const owner = await hub.signUp("Runtime Owner");
  const tenantId = (await hub.createTenant(owner)).id;
  const base = `/api/tenants/${tenantId}`;
  const sidecar = await hub.ok("POST", `${base}/sidecars`, owner.token, { name: "e2e-sidecar", capacity: 4 });
  expect(sidecar.secret).toMatch(/^ahs_/);
  const provider = await hub.ok("POST", `${base}/providers`, owner.token, {
    name: "echo",
    plugin: "echo",
    metadata: { baseURL: "http://127.0.0.1/echo" },
  });
  await hub.ok("POST", `${base}/credentials`, owner.token, {
    name: "echo-key",
    type: "api_key",
    providerId: provider.id,
    secret: "unused-offline",
  });
  // The tenant's first wallet is its default: launches charge it.
  await hub.ok("POST", `${base}/wallets`, owner.token, { name: "Budget", backendType: "credits", currency: "USD" });
  const agent = await hub.ok("POST", `${base}/agents/definitions`, owner.token, {
    name: "Echo",
    systemPrompt: "You repeat what you are told.",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
  });
  const stateDir = await mkdtemp(join(tmpdir(), "agent-hub-sidecar-"));
  return { owner, tenantId, agentId: agent.id, sidecarId: sidecar.id, secret: sidecar.secret, stateDir };
}

function runSidecar(s: Setup) {
  return startSidecar({ hubUrl, secret: s.secret, stateDir: s.stateDir, quiet: true });
}

async function waitOnline(s: Setup) {
  await until("the sidecar to be online", async () => {
    const res = await hub.call("GET", `/api/tenants/${s.tenantId}/sidecars/${s.sidecarId}`, s.owner.token);
    return res.body?.status === "online";
  });
}

const instancePath = (s: Setup, id: string) => `/api/tenants/${s.tenantId}/agents/instances/${id}`;

function events(s: Setup, id: string) {
  return new SseClient(`${hubUrl}${instancePath(s, id)}/events`, { authorization: `Bearer ${s.owner.token}` });
}

describe("an instance from launch to stop", () => {
  let s: Setup;
  let sidecar: ReturnType<typeof runSidecar>;

  beforeAll(async () => {
    s = await setUpTenant();
    sidecar = runSidecar(s);
    await waitOnline(s);
  });

  afterAll(async () => {
    await sidecar?.stop();
    await rm(s.stateDir, { recursive: true, force: true });
  });

  it("launches, answers mail while streaming, keeps turns and mail, and stops", async () => {
    const launched = await hub.call("POST", `/api/tenants/${s.tenantId}/agents/instances`, s.owner.token, {
      agentId: s.agentId,
    });
    expect(launched.status, JSON.stringify(launched.body) + sidecar.output()).toBe(201);
    expect(launched.body).toMatchObject({ status: "running", agentName: "Echo", sidecarId: s.sidecarId });
    const id = launched.body.id as string;

    const sse = events(s, id);
    await sse.open();

    const sent = await hub.ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: "hello agent" });
    expect(sent).toMatchObject({ direction: "inbound", to: [{ email: launched.body.address }] });
    expect(sent.bodyValues[sent.textBody[0].partId].value).toContain("hello agent");

    await sse.waitFor((m) => m.some((x) => x.data.type === "mail.delivered" && x.data.data.direction === "outbound"));
    const types = sse.types();
    for (const type of [
      "mail.delivered",
      "inference.start",
      "inference.text.delta",
      "inference.done",
      "connector.reply",
      "turn.committed",
    ]) {
      expect(types).toContain(type);
    }
    expect(sse.retry).toBe(3000);
    const ids = sse.messages.filter((m) => m.id !== null).map((m) => Number(m.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    const committed = sse.messages.find((m) => m.data.type === "turn.committed")?.data.data;
    expect(committed).toMatchObject({ status: "completed", hadReply: true, text: "Echo: hello agent" });

    const turns = await hub.ok("GET", `${instancePath(s, id)}/turns`, s.owner.token);
    expect(turns.data).toHaveLength(1);
    expect(turns.data[0]).toMatchObject({ status: "completed", model: "echo" });
    expect(turns.data[0].parts.map((p: { type: string }) => p.type)).toEqual(["step-start", "text", "step-finish"]);
    expect(turns.data[0].parts[1].content).toBe("Echo: hello agent");

    const mail = await hub.ok("GET", `${instancePath(s, id)}/mail`, s.owner.token);
    expect(mail.data.map((m: { direction: string }) => m.direction)).toEqual(["outbound", "inbound"]);
    const reply = mail.data[0];
    expect(reply.bodyValues[reply.textBody[0].partId].value).toContain("Echo: hello agent");
    expect(reply.inReplyTo).toBe(`<${sent.id}@${launched.body.address.split("@")[1]}>`);

    const key = await fetch(`${hubUrl}${instancePath(s, id)}/mail-key`, {
      headers: { authorization: `Bearer ${s.owner.token}` },
    });
    expect(await key.text()).toContain("BEGIN PGP PUBLIC KEY BLOCK");

    const health = await hub.ok("GET", `${instancePath(s, id)}/health`, s.owner.token);
    expect(health).toMatchObject({ liveness: "ok", readiness: "ok" });

    const stopped = await hub.call("DELETE", instancePath(s, id), s.owner.token);
    expect(stopped.status).toBe(204);
    await sse.waitFor((m) => m.some((x) => x.data.type === "session.ended"));
    await sse.close();
    expect((await hub.call("GET", `${instancePath(s, id)}/health`, s.owner.token)).status).toBe(410);
    expect((await hub.call("GET", `${instancePath(s, id)}/events`, s.owner.token)).status).toBe(410);
    expect((await hub.call("DELETE", instancePath(s, id), s.owner.token)).body.error.code).toBe("conflict");
  });

  it("resumes a stream with Last-Event-ID: exactly the missed events, no gap, no duplicate", async () => {
    const { id } = await hub.ok("POST", `/api/tenants/${s.tenantId}/agents/instances`, s.owner.token, {
      agentId: s.agentId,
    });
    const witness = events(s, id);
    const resumer = events(s, id);
    await witness.open();
    await resumer.open();
    const words = Array.from({ length: 120 }, (_, i) => `word${i}`).join(" ");
    await hub.ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: words });

    await resumer.waitFor((m) => m.filter((x) => x.data.type === "inference.text.delta").length >= 10);
    await resumer.close();
    const lastSeen = resumer.lastId() as string;
    const before = resumer.messages.filter((m) => m.id !== null).map((m) => Number(m.id));

    await witness.waitFor((m) => m.some((x) => x.data.type === "turn.committed"));
    const again = events(s, id);
    await again.open(lastSeen);
    await again.waitFor((m) => m.some((x) => x.data.type === "turn.committed"));
    const after = again.messages.filter((m) => m.id !== null).map((m) => Number(m.id));
    const committedSeq = Number(witness.messages.find((m) => m.data.type === "turn.committed")?.id);

    expect(after[0]).toBe(Number(lastSeen) + 1);
    const combined = [...before, ...after.filter((x) => x <= committedSeq)];
    const expected = witness.messages
      .map((m) => Number(m.id))
      .filter((x) => x <= committedSeq && x >= (before[0] as number));
    expect(combined).toEqual(expected);
    await witness.close();
    await again.close();
    await hub.ok("DELETE", instancePath(s, id), s.owner.token);
  });
});

describe("a sidecar killed mid-turn", () => {
  let s: Setup;

  beforeAll(async () => {
    s = await setUpTenant();
  });

  afterAll(async () => {
    await rm(s.stateDir, { recursive: true, force: true });
  });

  it("fails the turn, reports unhealthy, and delivers mail queued meanwhile after it reconnects", async () => {
    let sidecar = runSidecar(s);
    await waitOnline(s);
    const { id } = await hub.ok("POST", `/api/tenants/${s.tenantId}/agents/instances`, s.owner.token, {
      agentId: s.agentId,
    });
    const sse = events(s, id);
    await sse.open();
    const words = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
    await hub.ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: words });
    await sse.waitFor((m) => m.some((x) => x.data.type === "inference.text.delta"));
    sidecar.child.kill("SIGKILL");

    await sse.waitFor((m) => m.some((x) => x.data.type === "turn.failed"));
    await sse.waitFor((m) => m.some((x) => x.data.type === "sidecar.disconnected"));
    const health = await hub.ok("GET", `${instancePath(s, id)}/health`, s.owner.token);
    expect(health.liveness).toBe("unhealthy");
    const turns = await hub.ok("GET", `${instancePath(s, id)}/turns`, s.owner.token);
    expect(turns.data[0].status).toBe("failed");
    expect(turns.data[0].parts.at(-1)).toMatchObject({ type: "error", metadata: { category: "sidecar_disconnected" } });

    // Mail while the sidecar is away is kept, then delivered after it proves the instance key.
    const queued = await hub.ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: "are you back" });
    expect(queued.status).toBe("pending");
    sidecar = runSidecar(s);
    try {
      await sse.waitFor((m) => m.some((x) => x.data.type === "sidecar.reconnected"), 30_000);
      await sse.waitFor(
        (m) => m.some((x) => x.data.type === "turn.committed" && x.data.data.text === "Echo: are you back"),
        30_000,
      );
      const healthy = await hub.ok("GET", `${instancePath(s, id)}/health`, s.owner.token);
      expect(healthy.liveness).toBe("ok");
      const mail = await hub.ok("GET", `${instancePath(s, id)}/mail`, s.owner.token);
      expect(mail.data[0].direction).toBe("outbound");
      expect(mail.data[0].bodyValues[mail.data[0].textBody[0].partId].value).toContain("Echo: are you back");
    } finally {
      await sse.close();
      await hub.call("DELETE", instancePath(s, id), s.owner.token);
      await sidecar.stop();
    }
  });
});
