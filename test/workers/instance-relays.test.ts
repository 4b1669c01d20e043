/**
 * Relays of an instance's live events (docs/events.md, "Relays"). The test pool lets one object serve two
 * subscribers (vitest.config.ts): from an instance's third subscriber on, relay objects serve them. Real
 * objects throughout: the Worker's route, the instance's object and its relays.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "./support/api";
import { instancesOf, launch, type Runtime, SLOW, setUpRuntime, subscribe, until } from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

type Message = { id: number | null; type: string; data: Record<string, any> };

/** The SSE messages in a stream's text. */
function messages(text: string): Message[] {
  return text
    .split("\n\n")
    .filter((block) => block.includes("data: "))
    .map((block) => {
      const id = /^id: (\d+)$/m.exec(block)?.[1];
      const { type, data } = JSON.parse(block.slice(block.indexOf("data: ") + 6));
      return { id: id === undefined ? null : Number(id), type, data };
    });
}

/** The numbered messages of a stream follow each other without a gap or a repeat. */
function expectConsecutive(list: Message[]): void {
  const ids = list.map((m) => m.id).filter((id) => id !== null);
  expect(ids).toEqual(ids.map((_, k) => (ids[0] as number) + k));
}

/** The `i` of the `custom.n` events, in the order received. */
const numbers = (list: Message[]) => list.filter((m) => m.type === "custom.n").map((m) => m.data.i as number);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/** Subscribers a relay object of the instance serves now. */
function relayMembers(instanceId: string, index: number): Promise<number> {
  const stub = env.EVENT_RELAY.get(env.EVENT_RELAY.idFromName(`${instanceId}:${index}`));
  return runInDurableObject(stub, (object) => (object as any).relay?.streams.size ?? 0);
}

describe("relays of an instance's live events", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  /** Sends custom.n events `from` … `to - 1`, letting the hub take them in batches. */
  async function emit(channel: TestInstanceChannel, from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      channel.event("custom.n", { i });
      if (i % 50 === 49) await channel.settled();
    }
    await channel.settled();
  }

  it("subscribers past the instance's share are served by relays; each gets every event once, in order", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const streams = [];
    for (let k = 0; k < 6; k++) streams.push(await subscribe(path, r.token));
    expect(streams.map((s) => s.res.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // Two on the instance, then relays filled in order.
    expect([await relayMembers(instance.id, 0), await relayMembers(instance.id, 1)]).toEqual([2, 2]);

    await emit(channel, 0, 300);
    for (const stream of streams) {
      const got = messages(await stream.until('"i":299}'));
      expect(numbers(got)).toEqual(range(0, 300));
      expectConsecutive(got);
      await stream.close();
    }
  });

  it("a relay's subscriber resuming with Last-Event-ID gets the gap from the log, then the live stream, once", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const direct = [await subscribe(path, r.token), await subscribe(path, r.token)];
    const relayed = await subscribe(path, r.token);
    expect(await relayMembers(instance.id, 0)).toBe(1);

    await emit(channel, 0, 100);
    const before = messages(await relayed.until('"i":99}'));
    await relayed.close();
    // The client saw up to i = 59 (the rest was lost with its connection) and comes back while events go on.
    const lastSeen = before.find((m) => m.type === "custom.n" && m.data.i === 59)?.id as number;
    await emit(channel, 100, 150);
    const resumed = await subscribe(path, r.token, "", { "last-event-id": String(lastSeen) });
    await until("the resumed subscriber on the relay", async () => (await relayMembers(instance.id, 0)) === 1);
    await emit(channel, 150, 200);

    const after = messages(await resumed.until('"i":199}'));
    expect(numbers(after)).toEqual(range(60, 200));
    expect(after.find((m) => m.id !== null)?.id).toBe(lastSeen + 1);
    expectConsecutive(after);
    await resumed.close();
    for (const stream of direct) await stream.close();
  });

  it("a relay's subscriber joining mid-turn gets the text so far, then only the later deltas", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.text.delta", { token: "Hel" });
    channel.event("inference.text.delta", { token: "lo" });
    await channel.settled();
    const direct = [await subscribe(path, r.token), await subscribe(path, r.token)];
    const relayed = await subscribe(path, r.token);
    expect(await relayMembers(instance.id, 0)).toBe(1);

    channel.event("inference.text.delta", { token: "!" });
    const got = messages(await relayed.until('"token":"!"'));
    expect(got[0]).toMatchObject({ id: null, type: "inference.text.replay", data: { text: "Hello" } });
    expect(got.slice(1).map((m) => [m.type, m.data.token])).toEqual([["inference.text.delta", "!"]]);
    await relayed.close();
    for (const stream of direct) await stream.close();
  });

  it("a relay whose feed breaks opens it again from its last event: its subscribers lose nothing", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const direct = [await subscribe(path, r.token), await subscribe(path, r.token)];
    const relayed = await subscribe(path, r.token);
    await emit(channel, 0, 50);
    await relayed.until('"i":49}');

    // The instance drops the relay's feed, as it drops a stream that failed.
    const stub = env.INSTANCE.get(env.INSTANCE.idFromName(instance.id));
    await runInDurableObject(stub, (object) => {
      const streams = (object as any).parts.events.streams;
      for (const feed of streams.feeds.sinks()) streams.drop(feed);
    });
    await emit(channel, 50, 100);
    const got = messages(await relayed.until('"i":99}'));
    expect(numbers(got)).toEqual(range(0, 100));
    expectConsecutive(got);
    await relayed.close();
    for (const stream of direct) await stream.close();
  });

  it("when the instance stops, a relay's subscribers get session.ended and their streams end", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const direct = [await subscribe(path, r.token), await subscribe(path, r.token)];
    const relayed = [await subscribe(path, r.token), await subscribe(path, r.token)];
    await emit(channel, 0, 10);
    expect((await api(path, { method: "DELETE", token: r.token })).status).toBe(204);
    for (const stream of [...relayed, ...direct]) {
      const { text, end } = await stream.rest();
      expect(end).toBe("closed");
      const got = messages(text);
      expect(numbers(got)).toEqual(range(0, 10));
      expect(got.at(-1)?.type).toBe("session.ended");
      expectConsecutive(got);
    }
  });
});
