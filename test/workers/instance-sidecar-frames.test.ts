import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, expectError } from "./support/api";
import {
  instancesOf,
  launch,
  mailRows,
  type Runtime,
  SLOW,
  setUpRuntime,
  subscribe,
  textOf,
  until,
} from "./support/runtime";
import { TestSidecar } from "./support/test-sidecar";

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

    // Garbage instead of base64 is refused (frame.error): the channel stays open and nothing is stored.
    const from = channel.log.frames.length;
    channel.send({ type: "mail.outbound", agentAddress: instance.address, rawMessage: "%%%", recipients: [] });
    expect(await channel.log.next("frame.error", from)).toMatchObject({
      frameType: "mail.outbound",
      field: "rawMessage",
    });
    await channel.settled();
    expect((await mailRows(instance.id)).length).toBe(2);
  });
});
