import { afterEach, describe, expect, it, vi } from "vitest";
import { Broadcast } from "./broadcast";
import { sseMessage } from "./fanout";
import { HEARTBEAT_INTERVAL_MS } from "./protocol";

const event = (seq: number) => ({ seq, text: sseMessage(seq, "custom.n", `{"n":${seq}}`) });

/** Reads a stream in the background; `arrivals` holds the (fake) time and text of each chunk. */
function listen(res: Response) {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const arrivals: { at: number; text: string }[] = [];
  (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      arrivals.push({ at: Date.now(), text: decoder.decode(value) });
    }
  })().catch(() => {});
  return { arrivals, cancel: () => reader.cancel() };
}

/** Lets the fake clock run `ms`, a second at a time, giving the streams their turn between. */
async function pass(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 1_000) {
    await vi.advanceTimersByTimeAsync(Math.min(1_000, ms - t));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("Broadcast", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("never leaves a stream silent longer than the heartbeat interval, wherever the events fall", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "setInterval", "clearTimeout", "clearInterval", "Date"] });
    const broadcast = new Broadcast();
    const stream = listen(broadcast.open("retry: 3000\n\n", 0));
    // Events just after the heartbeat's looks: the case where a check once found the stream "recent" and
    // the next came a whole interval later (up to twice the interval of silence).
    await pass(1_000);
    broadcast.push(event(1));
    await pass(HEARTBEAT_INTERVAL_MS + 1_000);
    broadcast.push(event(2));
    await pass(4 * HEARTBEAT_INTERVAL_MS);
    broadcast.closeAll();
    await pass(1_000);

    const times = stream.arrivals.map((a) => a.at);
    const gaps = times.slice(1).map((t, k) => t - (times[k] as number));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(HEARTBEAT_INTERVAL_MS);
    const text = stream.arrivals.map((a) => a.text).join("");
    expect(text).toContain(": heartbeat\n\n");
    expect([...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([1, 2]);
  });

  it("sends no heartbeat while events flow", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "setInterval", "clearTimeout", "clearInterval", "Date"] });
    const broadcast = new Broadcast();
    const stream = listen(broadcast.open("", 0));
    for (let seq = 1; seq <= 40; seq++) {
      broadcast.push(event(seq));
      await pass(1_000);
    }
    broadcast.closeAll();
    await pass(1_000);
    const text = stream.arrivals.map((a) => a.text).join("");
    expect(text).not.toContain("heartbeat");
    expect([...text.matchAll(/^id: (\d+)$/gm)]).toHaveLength(40);
  });
});
