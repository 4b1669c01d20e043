import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import PostalMime from "postal-mime";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readInstanceFrame } from "../src/runtime/frame-schemas";
import { logFrame } from "./harness";
import { Sidecar, type SidecarOptions } from "./sidecar";
import { agentConfig, FakeHub, type Frame, userMail, verifySignature } from "./support/fake-hub";

const SECRET = "ahs_test_secret";
const USER = "ada@example.com";

let hub: FakeHub;
let stateDir: string;
let sidecars: Sidecar[];
let logs: string[];

function newSidecar(overrides: Partial<SidecarOptions> = {}): Sidecar {
  const sidecar = new Sidecar({
    hubUrl: hub.url,
    secret: SECRET,
    stateDir,
    log: (line) => logs.push(line),
    backoff: { initialMs: 20, maxMs: 200 },
    models: { echoDelayMs: 1 },
    ...overrides,
  });
  sidecars.push(sidecar);
  return sidecar;
}

beforeEach(async () => {
  hub = await FakeHub.start(SECRET);
  stateDir = await mkdtemp(join(tmpdir(), "sidecar-test-"));
  sidecars = [];
  logs = [];
});

afterEach(async () => {
  for (const sidecar of sidecars) await sidecar.stop();
  await hub.close();
  await rm(stateDir, { recursive: true, force: true });
});

const events = (instanceId: string) =>
  hub
    .frames(instanceId)
    .filter((f) => f.type === "agent.event")
    .map((f) => f.event as { type: string; seq: number; data: Record<string, unknown> });

/** The `log` frames an instance sent: level, message and metadata. */
const logLines = (instanceId: string) =>
  hub
    .frames(instanceId)
    .filter((f) => f.type === "log")
    .map(({ level, message, metadata }) => ({ level, message, ...(metadata ? { metadata } : {}) }));

/** Starts a sidecar, waits for `ready`, assigns `instanceId` and waits until it is deployed and started. */
async function deployed(instanceId: string, sidecar = newSidecar()): Promise<{ sidecar: Sidecar; publicKey: string }> {
  await sidecar.start();
  await hub.waitFor("control", (f) => f.type === "ready");
  hub.assign(instanceId);
  const ack = await hub.waitFor(instanceId, (f) => f.type === "agent.deploy.ack");
  await hub.waitFor(instanceId, (f) => f.type === "session.start.ack");
  return { sidecar, publicKey: String(ack.publicKey) };
}

function sendMail(
  instanceId: string,
  mailId: string,
  text: string,
  extra: { inReplyTo?: string; references?: string[] } = {},
) {
  const agentAddress = hub.instance(instanceId).agentAddress;
  const messageId = `<${mailId}@hub.test>`;
  hub.sendInstance(instanceId, {
    type: "mail.inbound",
    agentAddress,
    mailId,
    rawMessage: userMail({ from: USER, to: agentAddress, text, messageId, subject: "Hello", ...extra }),
  });
  return messageId;
}

async function outbound(instanceId: string, index: number): Promise<Frame> {
  return hub.until(
    () => hub.frames(instanceId).filter((f) => f.type === "mail.outbound")[index],
    4_000,
    "mail.outbound",
  );
}

describe("first deploy and a turn", () => {
  it("deploys, starts, answers a mail with events in order and a threaded reply, then undeploys", async () => {
    const { sidecar, publicKey } = await deployed("ins_one");
    expect(hub.frames("control")[0]).toEqual({ type: "ready", instances: [] });
    expect(publicKey).toMatch(/^[0-9a-f]{64}$/);
    // The key is a real Ed25519 key: the hub can verify a signature made with it (checked in the reconnect test),
    // and it is on disk with the config so that a restart can prove it.
    const stored = JSON.parse(await readFile(join(stateDir, "ins_one.json"), "utf8"));
    expect(stored).toMatchObject({ instanceId: "ins_one", publicKey, started: true, config: agentConfig("ins_one") });

    const agentAddress = hub.instance("ins_one").agentAddress;
    const inboundId = sendMail("ins_one", "mail_1", "hello there agent");
    const mail = await outbound("ins_one", 0);
    const state = await hub.waitFor("ins_one", (f) => f.type === "connector.state.changed");

    const turn = events("ins_one");
    expect(turn.map((e) => e.type)).toEqual([
      "inference.start",
      "inference.text.delta",
      "inference.text.delta",
      "inference.text.delta",
      "inference.text.delta",
      "inference.usage",
      "inference.done",
      "connector.reply",
    ]);
    for (let i = 1; i < turn.length; i++) expect(turn[i]?.seq).toBeGreaterThan(turn[i - 1]?.seq ?? 0);
    expect(turn[0]?.data).toEqual({ model: "echo" });
    const deltas = turn.filter((e) => e.type === "inference.text.delta").map((e) => e.data.token);
    expect(deltas.join("")).toBe("Echo: hello there agent");
    const done = turn.find((e) => e.type === "inference.done")?.data as {
      turn: Record<string, unknown>;
      source: string;
      usage: Record<string, number>;
    };
    expect(done.turn).toMatchObject({
      role: "assistant",
      content: [{ type: "text", text: "Echo: hello there agent" }],
      model: "echo",
    });
    expect(typeof done.turn.timestamp).toBe("string");
    expect(done.source).toBe("echo:echo");
    expect(done.usage).toMatchObject({ output: 4 });
    expect(turn.at(-1)?.data).toEqual({ content: "Echo: hello there agent" });
    for (const frame of hub.frames("ins_one").filter((f) => f.type === "agent.event")) {
      expect(frame).toMatchObject({ agentAddress, sessionId: "ses_ins_one" });
    }

    // The reply: from the agent to the user, threaded under the user's message.
    expect(mail).toMatchObject({ agentAddress, recipients: [USER], sessionId: "ses_ins_one" });
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.from?.address).toBe(agentAddress);
    expect(reply.to?.map((a) => a.address)).toEqual([USER]);
    expect(reply.inReplyTo).toBe(inboundId);
    expect(reply.references).toBe(inboundId);
    expect(reply.messageId).toBe(mail.messageId);
    expect(reply.subject).toBe("Re: Hello");
    expect(reply.text?.trim()).toBe("Echo: hello there agent");
    expect(state.connectorState).toEqual({
      threadRoot: inboundId,
      lastMessageId: mail.messageId,
      replyTo: USER,
      cc: [],
      subject: "Hello",
    });

    // A second mail in the same thread: its own turn, seq keeps growing, References carry the thread.
    const secondId = sendMail("ins_one", "mail_2", "and again", {
      inReplyTo: String(mail.messageId),
      references: [inboundId, String(mail.messageId)],
    });
    const second = await PostalMime.parse(Buffer.from(String((await outbound("ins_one", 1)).rawMessage), "base64"));
    expect(second.inReplyTo).toBe(secondId);
    expect(second.references).toBe(`${inboundId} ${mail.messageId} ${secondId}`);
    const all = events("ins_one");
    expect(all.filter((e) => e.type === "inference.start")).toHaveLength(2);
    expect(new Set(all.map((e) => e.seq)).size).toBe(all.length);

    hub.sendInstance("ins_one", { type: "agent.undeploy", agentAddress, reason: "instance_stopped" });
    const undeployed = await hub.waitFor("ins_one", (f) => f.type === "agent.undeploy.ack");
    // The hub acknowledged the state push that came before the ack (state-sync.test.ts has the details).
    expect(undeployed).toEqual({ type: "agent.undeploy.ack", agentAddress, statePushed: true });
    await hub.until(() => sidecar.instanceIds.length === 0 && !existsSync(join(stateDir, "ins_one.json")));
  });

  it("runs one turn at a time, in arrival order", async () => {
    await deployed("ins_queue");
    sendMail("ins_queue", "m1", "one");
    sendMail("ins_queue", "m2", "two two");
    sendMail("ins_queue", "m3", "three three three");
    await outbound("ins_queue", 2);
    const types = events("ins_queue").map((e) => e.type);
    // No turn starts before the previous one replied.
    const starts = types.flatMap((t, i) => (t === "inference.start" ? [i] : []));
    const replies = types.flatMap((t, i) => (t === "connector.reply" ? [i] : []));
    expect(starts).toHaveLength(3);
    expect(starts[1]).toBeGreaterThan(replies[0] ?? Infinity);
    expect(starts[2]).toBeGreaterThan(replies[1] ?? Infinity);
    const texts = events("ins_queue")
      .filter((e) => e.type === "connector.reply")
      .map((e) => e.data.content);
    expect(texts).toEqual(["Echo: one", "Echo: two two", "Echo: three three three"]);
  });

  it("does not answer an automatic message (Auto-Submitted), so two agents cannot loop", async () => {
    await deployed("ins_auto");
    const agentAddress = hub.instance("ins_auto").agentAddress;
    const raw = Buffer.from(
      [
        "From: other@acme.agent-hub.local",
        `To: ${agentAddress}`,
        "Message-ID: <auto@hub.test>",
        "Auto-Submitted: auto-replied",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Echo: hi",
        "",
      ].join("\r\n"),
    ).toString("base64");
    hub.sendInstance("ins_auto", { type: "mail.inbound", agentAddress, mailId: "auto", rawMessage: raw });
    await hub.waitFor("ins_auto", (f) => f.type === "agent.event" && (f.event as Frame).type === "connector.reply");
    sendMail("ins_auto", "human", "from a person");
    await outbound("ins_auto", 0);
    expect(hub.frames("ins_auto").filter((f) => f.type === "mail.outbound")).toHaveLength(1);
  });
  it("still replies when the inbound threading ids cannot be written back, leaving those out", async () => {
    await deployed("ins_ids");
    const agentAddress = hub.instance("ins_ids").agentAddress;
    const raw = Buffer.from(
      [
        `From: ${USER}`,
        `To: ${agentAddress}`,
        "Message-ID: <no-domain-here>",
        "References: <bad> <good@hub.test>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "odd ids",
        "",
      ].join("\r\n"),
    ).toString("base64");
    hub.sendInstance("ins_ids", { type: "mail.inbound", agentAddress, mailId: "ids", rawMessage: raw });
    const mail = await outbound("ins_ids", 0);
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.text?.trim()).toBe("Echo: odd ids");
    expect(reply.inReplyTo).toBeUndefined();
    expect(reply.references).toBe("<good@hub.test>");
  });
});

describe("session.abort", () => {
  it("stops the running turn with inference.error aborted and reactor.done, then acks; the next mail runs", async () => {
    await deployed("ins_abort", newSidecar({ models: { echoDelayMs: 20 } }));
    const agentAddress = hub.instance("ins_abort").agentAddress;
    sendMail("ins_abort", "long", "word ".repeat(300));
    await hub.waitFor(
      "ins_abort",
      (f) => f.type === "agent.event" && (f.event as Frame).type === "inference.text.delta",
    );
    const requestId = hub.nextRequestId();
    hub.sendInstance("ins_abort", { type: "session.abort", requestId, agentAddress, reason: "admin_kill" });
    await hub.waitFor("ins_abort", (f) => f.type === "session.ack" && f.requestId === requestId);

    const after = events("ins_abort");
    const tail = after.slice(-2);
    expect(tail[0]).toMatchObject({ type: "inference.error", data: { error: { category: "aborted" } } });
    expect(tail[1]).toMatchObject({ type: "reactor.done", data: {} });
    expect(after.some((e) => e.type === "inference.done" || e.type === "connector.reply")).toBe(false);
    // The ack comes after the closing events.
    const frames = hub.frames("ins_abort");
    expect(frames.findIndex((f) => f.type === "session.ack")).toBeGreaterThan(
      frames.findIndex((f) => f.type === "agent.event" && (f.event as Frame).type === "reactor.done"),
    );
    expect(frames.some((f) => f.type === "mail.outbound")).toBe(false);

    sendMail("ins_abort", "short", "still there?");
    const mail = await outbound("ins_abort", 0);
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.text?.trim()).toBe("Echo: still there?");
  });

  it("acks an abort when nothing is running", async () => {
    await deployed("ins_idle");
    const requestId = hub.nextRequestId();
    const agentAddress = hub.instance("ins_idle").agentAddress;
    hub.sendInstance("ins_idle", { type: "session.abort", requestId, agentAddress, reason: "user_disconnect" });
    expect(await hub.waitFor("ins_idle", (f) => f.type === "session.ack")).toEqual({ type: "session.ack", requestId });
  });
});

describe("inference errors", () => {
  let openai: Server | null = null;
  let requests = 0;
  afterEach(async () => {
    const server = openai;
    openai = null;
    requests = 0;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A fake OpenAI endpoint answering each request with the next status (200 = a short SSE stream). */
  async function endpoint(statuses: number[]): Promise<string> {
    const server = createServer((req, res) => {
      req.resume();
      const status = statuses[Math.min(requests, statuses.length - 1)] ?? 500;
      requests += 1;
      if (status !== 200) {
        res.writeHead(status, { "content-type": "application/json" }).end('{"error":{"message":"nope"}}');
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const content of ["Hi", " there"])
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`);
      res.end("data: [DONE]\n\n");
    });
    openai = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  }

  async function useEndpoint(sidecar: Sidecar, instanceId: string, baseURL: string) {
    const agentAddress = hub.instance(instanceId).agentAddress;
    const requestId = hub.nextRequestId();
    const sources = [{ id: "openai:gpt-test", provider: "openai", baseURL, apiKey: "sk-test", model: "gpt-test" }];
    hub.sendInstance(instanceId, {
      type: "sources.update",
      requestId,
      agentAddress,
      sources,
      defaultSource: "openai:gpt-test",
    });
    await hub.waitFor(instanceId, (f) => f.type === "session.ack" && f.requestId === requestId);
    expect(sidecar.harness(instanceId)?.config.sources).toEqual(sources);
    return sources;
  }

  it("uses the sources from sources.update; an endpoint's 401 fails the turn and the sender is told", async () => {
    const baseURL = await endpoint([401]);
    const { sidecar } = await deployed("ins_err");
    const sources = await useEndpoint(sidecar, "ins_err", baseURL);

    const inboundId = sendMail("ins_err", "m", "hi");
    const mail = await outbound("ins_err", 0);
    const content = "[The model could not answer: credential_failure]";
    expect(events("ins_err").map((e) => [e.type, e.data])).toEqual([
      ["inference.start", { model: "gpt-test" }],
      [
        "inference.error",
        {
          error: { category: "credential_failure", message: expect.stringContaining("HTTP 401"), statusCode: 401 },
          partial: false,
        },
      ],
      ["connector.reply", { content }],
    ]);
    expect(requests).toBe(1); // a credential failure is not retried
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.inReplyTo).toBe(inboundId);
    expect(reply.text?.trim()).toBe(content);
    // The rotated credential is what a restart would use.
    const stored = JSON.parse(await readFile(join(stateDir, "ins_err.json"), "utf8"));
    expect(stored.config.sources).toEqual(sources);
  });

  it("retries a 5xx before the first token (inference.retry, no error) and then answers", async () => {
    const baseURL = await endpoint([503, 200]);
    const { sidecar } = await deployed("ins_retry", newSidecar({ models: { retryBaseMs: 10 } }));
    await useEndpoint(sidecar, "ins_retry", baseURL);

    sendMail("ins_retry", "m", "hi");
    const mail = await outbound("ins_retry", 0);
    expect(events("ins_retry").map((e) => e.type)).toEqual([
      "inference.start",
      "inference.retry",
      "inference.text.delta",
      "inference.text.delta",
      "inference.usage",
      "inference.done",
      "connector.reply",
    ]);
    expect(events("ins_retry")[1]?.data).toEqual({
      attempt: 1,
      delayMs: 10,
      previousError: { category: "retryable", message: expect.stringContaining("HTTP 503"), statusCode: 503 },
    });
    expect(requests).toBe(2);
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.text?.trim()).toBe("Hi there");
  });

  it("gives up after the configured retries with inference.error retryable", async () => {
    const baseURL = await endpoint([500]);
    const { sidecar } = await deployed("ins_down", newSidecar({ models: { retryBaseMs: 5, retries: 2 } }));
    await useEndpoint(sidecar, "ins_down", baseURL);
    sendMail("ins_down", "m", "hi");
    await outbound("ins_down", 0);
    expect(events("ins_down").map((e) => e.type)).toEqual([
      "inference.start",
      "inference.retry",
      "inference.retry",
      "inference.error",
      "connector.reply",
    ]);
    expect(events("ins_down").map((e) => e.data.delayMs ?? null)).toEqual([null, 5, 10, null, null]);
    expect(requests).toBe(3);
    // The operator reads the same story in the instance's logs: two retries, then the failure.
    expect(logLines("ins_down").filter((l) => l.level !== "info")).toEqual([
      {
        level: "warn",
        message: expect.stringMatching(/^Model call to gpt-test failed \(retryable\), retrying in 5 ms: HTTP 500/),
        metadata: { model: "gpt-test", attempt: 1, delayMs: 5, category: "retryable", statusCode: 500 },
      },
      {
        level: "warn",
        message: expect.stringMatching(/^Model call to gpt-test failed \(retryable\), retrying in 10 ms: HTTP 500/),
        metadata: { model: "gpt-test", attempt: 2, delayMs: 10, category: "retryable", statusCode: 500 },
      },
      {
        level: "error",
        message: expect.stringMatching(/^Model call to gpt-test failed: retryable: HTTP 500/),
        metadata: { model: "gpt-test", category: "retryable", statusCode: 500 },
      },
    ]);
  });
});

describe("log frames", () => {
  it("tells the instance's logs that it deployed, started and pushed state; a turn that goes well adds nothing", async () => {
    await deployed("ins_logs");
    const agentAddress = hub.instance("ins_logs").agentAddress;
    sendMail("ins_logs", "m", "hello");
    await outbound("ins_logs", 0);
    hub.sendInstance("ins_logs", { type: "sync.request", agentAddress, transferId: "sync-1" });
    await hub.waitFor("ins_logs", (f) => f.type === "log" && String(f.message).startsWith("State pushed"));
    const push = hub.instance("ins_logs").pushes[0] as { done: Frame; pack: Buffer };
    expect(logLines("ins_logs")).toEqual([
      {
        level: "info",
        message: "Deployed agent agt_test with model echo",
        metadata: { agentId: "agt_test", model: "echo", restoredMessages: 0 },
      },
      { level: "info", message: "Started: taking mail" },
      {
        level: "info",
        message: `State pushed: refs/heads/main at ${push.done.commitSha}`,
        metadata: {
          transferId: "sync-1",
          ref: "refs/heads/main",
          commitSha: push.done.commitSha,
          bytes: push.pack.length,
        },
      },
    ]);
    for (const frame of hub.frames("ins_logs").filter((f) => f.type === "log"))
      expect(frame.agentAddress).toBe(agentAddress);
  });

  it("cuts a message longer than the hub takes instead of having the line refused", () => {
    const frame = logFrame("ins_a@acme.agent-hub.local", "error", `Model call failed: ${"x".repeat(5_000)}`);
    expect(frame).toMatchObject({
      type: "log",
      level: "error",
      message: expect.stringMatching(/^Model call failed: x+…$/),
    });
    expect((frame as { message: string }).message).toHaveLength(4_096);
    expect(readInstanceFrame(JSON.stringify(frame)).ok).toBe(true);
    // The hub's own check refuses the uncut line: the cut is what keeps it.
    const uncut = { ...frame, message: `Model call failed: ${"x".repeat(5_000)}` };
    expect(readInstanceFrame(JSON.stringify(uncut)).ok).toBe(false);
  });
});

describe("reconnect", () => {
  it("reconnects a dropped instance channel and proves the instance key; queued mail then runs", async () => {
    const { publicKey } = await deployed("ins_re");
    hub.dropInstance("ins_re");
    // Mail sent while the sidecar is away waits in the hub.
    const inboundId = sendMail("ins_re", "while_away", "are you back");

    await hub.until(() => hub.challenges.find((c) => c.instanceId === "ins_re"), 4_000, "a challenge response");
    expect(hub.challenges).toMatchObject([{ instanceId: "ins_re", verified: true }]);
    expect(hub.connects.get("ins_re")).toBe(2);
    // The signature covers nonce ‖ address with the key from the deploy ack, and nothing else.
    const response = hub.frames("ins_re").find((f) => f.type === "challenge.response");
    const nonce = hub.challenges[0]?.nonce ?? "";
    const address = hub.instance("ins_re").agentAddress;
    expect(response).toMatchObject({ agentAddress: address, signature: expect.stringMatching(/^[0-9a-f]{128}$/) });
    expect(verifySignature(publicKey, nonce, address, String(response?.signature))).toBe(true);
    expect(verifySignature(publicKey, "00".repeat(32), address, String(response?.signature))).toBe(false);
    expect(verifySignature(publicKey, nonce, "someone@else", String(response?.signature))).toBe(false);

    // grants.update and sources.update are acked with their request ids.
    const acks = await hub.until(() => {
      const list = hub.frames("ins_re").filter((f) => f.type === "session.ack");
      return list.length >= 2 ? list : undefined;
    });
    expect(acks.map((f) => f.requestId)).toEqual(["req_1", "req_2"]);

    const mail = await outbound("ins_re", 0);
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.inReplyTo).toBe(inboundId);
    expect(reply.text?.trim()).toBe("Echo: are you back");
  });

  it("a turn running when the sidecar loses the channel is stopped; mail queued behind it runs after the reconnect", async () => {
    const { sidecar } = await deployed("ins_cut", newSidecar({ models: { echoDelayMs: 20 } }));
    sendMail("ins_cut", "long", "word ".repeat(300));
    const nextId = sendMail("ins_cut", "next", "after the cut");
    await hub.waitFor("ins_cut", (f) => f.type === "agent.event" && (f.event as Frame).type === "inference.text.delta");
    sidecar.dropInstanceChannel("ins_cut");

    const mail = await outbound("ins_cut", 0);
    expect(hub.challenges).toMatchObject([{ instanceId: "ins_cut", verified: true }]);
    const reply = await PostalMime.parse(Buffer.from(String(mail.rawMessage), "base64"));
    expect(reply.inReplyTo).toBe(nextId);
    expect(reply.text?.trim()).toBe("Echo: after the cut");
    // The cut turn never finished: one inference.done, for the second mail only.
    const done = events("ins_cut").filter((e) => e.type === "inference.done");
    expect(done).toHaveLength(1);
    expect(hub.frames("ins_cut").filter((f) => f.type === "mail.outbound")).toHaveLength(1);
  });

  it("a restarted sidecar with the same state dir lists its instances in ready and answers the challenge", async () => {
    const first = await deployed("ins_restart");
    await first.sidecar.stop();
    await hub.until(() => hub.instance("ins_restart").ws === null);

    const second = newSidecar();
    await second.start();
    expect(second.instanceIds).toEqual(["ins_restart"]);
    await hub.until(() => hub.frames("control").length >= 2);
    expect(hub.frames("control").filter((f) => f.type === "ready")).toEqual([
      { type: "ready", instances: [] },
      { type: "ready", instances: ["ins_restart"] },
    ]);
    hub.assign("ins_restart");
    await hub.until(() => hub.challenges.find((c) => c.instanceId === "ins_restart"), 4_000, "a challenge response");
    expect(hub.challenges).toMatchObject([{ instanceId: "ins_restart", verified: true }]);
    // No second deploy: the hub kept the key from the first one.
    expect(hub.frames("ins_restart").filter((f) => f.type === "agent.deploy.ack")).toHaveLength(1);

    // The restored config (sources, address, session) serves mail.
    sendMail("ins_restart", "after_restart", "still me");
    const reply = await PostalMime.parse(Buffer.from(String((await outbound("ins_restart", 0)).rawMessage), "base64"));
    expect(reply.from?.address).toBe(hub.instance("ins_restart").agentAddress);
    expect(reply.text?.trim()).toBe("Echo: still me");
  });

  it("forgets an instance whose challenge fails (another key) and does not reconnect it", async () => {
    const { sidecar } = await deployed("ins_bad");
    // The hub holds a different key for the instance (e.g. it was redeployed elsewhere).
    hub.instance("ins_bad").publicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    hub.dropInstance("ins_bad");
    await hub.until(() => hub.challenges.length === 1);
    expect(hub.challenges).toMatchObject([{ instanceId: "ins_bad", verified: false }]);
    await hub.until(() => sidecar.instanceIds.length === 0);
    await hub.until(() => !existsSync(join(stateDir, "ins_bad.json")));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(hub.connects.get("ins_bad")).toBe(2);
  });

  it("forgets an instance the hub answers 410 for (stopped while away)", async () => {
    const { sidecar } = await deployed("ins_gone");
    hub.instance("ins_gone").refuseWith = 410;
    hub.dropInstance("ins_gone");
    await hub.until(() => sidecar.instanceIds.length === 0 && !existsSync(join(stateDir, "ins_gone.json")));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(hub.connects.get("ins_gone")).toBe(2);
  });

  it("drops instances the hub revokes on the control channel", async () => {
    const { sidecar } = await deployed("ins_revoked");
    hub.sendControl({ type: "instance.revoke", instanceId: "ins_revoked", reason: "instance_stopped" });
    await hub.until(() => sidecar.instanceIds.length === 0 && !existsSync(join(stateDir, "ins_revoked.json")));
  });
});

describe("control channel", () => {
  it("pings, and reconnects when the hub stops answering", async () => {
    const sidecar = newSidecar({ pingIntervalMs: 30, deadAfterMs: 150 });
    await sidecar.start();
    await hub.until(() => hub.frames("control").filter((f) => f.type === "ping").length >= 2);
    expect(hub.connects.get("control")).toBe(1);
    hub.answerPings = false;
    await hub.until(() => (hub.connects.get("control") ?? 0) >= 2, 4_000, "a second control connection");
    expect(logs.some((line) => line.includes("silent for 150 ms"))).toBe(true);
  });

  it("reconnects with backoff after the hub goes away", async () => {
    const sidecar = newSidecar();
    await sidecar.start();
    await hub.waitFor("control", (f) => f.type === "ready");
    hub.control?.terminate();
    await hub.until(() => hub.frames("control").filter((f) => f.type === "ready").length >= 2);
    expect(hub.connects.get("control")).toBe(2);
  });

  it("stops when another connection with the same secret replaces it (close 4000)", async () => {
    let fatal: Error | null = null;
    const sidecar = newSidecar({ onFatal: (error) => (fatal = error) });
    await sidecar.start();
    await hub.waitFor("control", (f) => f.type === "ready");
    hub.control?.close(4000, "replaced by a new connection");
    const error = await hub.until(() => fatal ?? undefined, 4_000, "onFatal");
    expect(error.message).toContain("replaced");
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(hub.connects.get("control")).toBe(1);
  });

  it("gives up when the hub refuses the secret", async () => {
    let fatal: Error | null = null;
    const sidecar = newSidecar({ secret: "ahs_wrong", onFatal: (error) => (fatal = error) });
    await sidecar.start();
    const error = await hub.until(() => fatal ?? undefined, 4_000, "onFatal");
    expect(error.message).toContain("401");
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(hub.connects.get("control")).toBe(1);
  });
});
