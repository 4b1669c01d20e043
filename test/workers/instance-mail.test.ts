import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "./support/api";
import { instancesOf, launch, mailRows, type Runtime, SLOW, setUpRuntime, until } from "./support/runtime";
import { TestSidecar } from "./support/test-sidecar";

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
