import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { LiveEvents, resumeCursor } from "./live-events";

/** Runs `fn` inside a fresh instance object, against its SQLite storage. */
async function inObject<T>(fn: (sql: SqlStorage) => Promise<T>): Promise<T> {
  const stub = env.INSTANCE.get(env.INSTANCE.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state.storage.sql));
}

type Message = { id: number | null; data: { type: string; seq?: number; data: Record<string, unknown> } };

/** Reads SSE messages from a stream until `done(messages)` holds or the stream ends. */
async function readUntil(res: Response, done: (messages: Message[]) => boolean): Promise<Message[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const messages: Message[] = [];
  let buffer = "";
  while (!done(messages)) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = /^data: (.*)$/m.exec(block)?.[1];
      const id = /^id: (\d+)$/m.exec(block)?.[1];
      if (data) messages.push({ id: id ? Number(id) : null, data: JSON.parse(data) });
      end = buffer.indexOf("\n\n");
    }
  }
  reader.releaseLock();
  return messages;
}

describe("LiveEvents", () => {
  it("streams recorded events to a subscriber with their sequence numbers as ids", async () => {
    await inObject(async (sql) => {
      const events = new LiveEvents(sql);
      const res = events.open(null, null, false);
      expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      const first = events.record("inference.text.delta", { text: "Hel" });
      events.record("inference.text.delta", { text: "lo" });
      const got = await readUntil(res, (m) => m.length >= 2);
      expect(got.map((m) => [m.id, m.data.type, m.data.data.text])).toEqual([
        [first, "inference.text.delta", "Hel"],
        [first + 1, "inference.text.delta", "lo"],
      ]);
      events.closeAll();
    });
  });

  it("resumes after a cursor with exactly the later events, then live ones", async () => {
    await inObject(async (sql) => {
      const events = new LiveEvents(sql);
      const a = events.record("a", {});
      events.record("b", {});
      events.record("c", {});
      const res = events.open(a, null, false);
      const replayed = await readUntil(res, (m) => m.length >= 2);
      expect(replayed.map((m) => m.data.type)).toEqual(["b", "c"]);
      events.record("d", {});
      const live = await readUntil(res, (m) => m.length >= 1);
      expect(live.map((m) => [m.id, m.data.type])).toEqual([[a + 3, "d"]]);
      events.closeAll();
    });
  });

  it("tells a subscriber joining mid-turn the text so far, through the last numbered event", async () => {
    await inObject(async (sql) => {
      const events = new LiveEvents(sql);
      const last = events.record("inference.text.delta", { text: "Hi" });
      const res = events.open(null, { turnId: "trn_1", text: "Hi" }, false);
      const [replay] = await readUntil(res, (m) => m.length >= 1);
      expect(replay?.data).toEqual({
        type: "inference.text.replay",
        data: { turnId: "trn_1", text: "Hi", throughSeq: last },
      });
      events.closeAll();
    });
  });

  it("ends every stream after sending it what it lacked, and an ended instance's stream at once", async () => {
    await inObject(async (sql) => {
      const events = new LiveEvents(sql);
      const res = events.open(null, null, false);
      events.record("session.ended", { reason: "instance_stopped" });
      events.closeAll();
      const got = await readUntil(res, () => false);
      expect(got.map((m) => m.data.type)).toEqual(["session.ended"]);
      const after = events.open(0, null, true);
      expect((await readUntil(after, () => false)).map((m) => m.data.type)).toEqual(["session.ended"]);
    });
  });

  it("reads the resume cursor from Last-Event-ID first, then ?cursor=, and ignores anything else", () => {
    const at = (url: string, headers: Record<string, string> = {}) => resumeCursor(new Request(url, { headers }));
    expect(at("https://do/events")).toBeNull();
    expect(at("https://do/events?cursor=12")).toBe(12);
    expect(at("https://do/events?cursor=12", { "last-event-id": "40" })).toBe(40);
    expect(at("https://do/events?cursor=-1")).toBeNull();
    expect(at("https://do/events?cursor=1e3")).toBeNull();
    expect(at("https://do/events", { "last-event-id": "9".repeat(16) })).toBeNull();
  });
});
