/**
 * The instance runtime end to end: the hub and the reference sidecar run as separate processes; a user
 * registers the sidecar, creates a provider, credential and agent, launches an instance, mails it, and
 * watches it over SSE. Also: resume with Last-Event-ID, and a sidecar killed mid-turn.
 */
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { client } from "./support/hub-client";
import {
  instanceEvents,
  instancePath,
  type RuntimeTenant,
  runSidecar,
  setUpRuntimeTenant,
  waitOnline,
} from "./support/runtime-tenant";

const hubUrl = inject("hubUrl");
const hub = client(hubUrl);
describe("an instance from launch to stop", () => {
  let s: RuntimeTenant;
  let sidecar: ReturnType<typeof runSidecar>;

  beforeAll(async () => {
    s = await setUpRuntimeTenant(hubUrl);
    sidecar = runSidecar(hubUrl, s);
    await waitOnline(hubUrl, s);
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

    const sse = instanceEvents(hubUrl, s, id);
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
    const witness = instanceEvents(hubUrl, s, id);
    const resumer = instanceEvents(hubUrl, s, id);
    await witness.open();
    await resumer.open();
    const words = Array.from({ length: 120 }, (_, i) => `word${i}`).join(" ");
    await hub.ok("POST", `${instancePath(s, id)}/mail`, s.owner.token, { content: words });

    await resumer.waitFor((m) => m.filter((x) => x.data.type === "inference.text.delta").length >= 10);
    await resumer.close();
    const lastSeen = resumer.lastId() as string;
    const before = resumer.messages.filter((m) => m.id !== null).map((m) => Number(m.id));

    await witness.waitFor((m) => m.some((x) => x.data.type === "turn.committed"));
    const again = instanceEvents(hubUrl, s, id);
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
  let s: RuntimeTenant;

  beforeAll(async () => {
    s = await setUpRuntimeTenant(hubUrl);
  });

  afterAll(async () => {
    await rm(s.stateDir, { recursive: true, force: true });
  });

  it("fails the turn, reports unhealthy, and delivers mail queued meanwhile after it reconnects", async () => {
    let sidecar = runSidecar(hubUrl, s);
    await waitOnline(hubUrl, s);
    const { id } = await hub.ok("POST", `/api/tenants/${s.tenantId}/agents/instances`, s.owner.token, {
      agentId: s.agentId,
    });
    const sse = instanceEvents(hubUrl, s, id);
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
    sidecar = runSidecar(hubUrl, s);
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
