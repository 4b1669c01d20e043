import { describe, expect, it } from "vitest";
import { sseMessage } from "./fanout";
import { SseReader } from "./sse-reader";

const encoder = new TextEncoder();

describe("SseReader", () => {
  it("returns whole events with their seq, however the chunks cut them, and skips lines without an id", () => {
    const first = sseMessage(7, "custom.a", '{"text":"héllo"}');
    const second = sseMessage(8, "custom.b", "{}");
    const feed = encoder.encode(`retry: 3000\n\n: heartbeat\n\n${first}event: agent.event\ndata: {}\n\n${second}`);
    for (const cut of [1, 2, 13, 40, feed.length - 1]) {
      const reader = new SseReader();
      const events = [...reader.push(feed.subarray(0, cut)), ...reader.push(feed.subarray(cut))];
      expect(events).toEqual([
        { seq: 7, text: first },
        { seq: 8, text: second },
      ]);
    }
  });

  it("keeps a message whose end has not arrived for the next chunk", () => {
    const reader = new SseReader();
    const message = sseMessage(1, "custom.a", "{}");
    expect(reader.push(encoder.encode(message.slice(0, -1)))).toEqual([]);
    expect(reader.push(encoder.encode("\n"))).toEqual([{ seq: 1, text: message }]);
  });
});
