/**
 * The heap of the hub Worker's isolate, read through its inspector (`Runtime.getHeapUsage`): the memory a
 * Worker is limited on (128 MB), unlike workerd's RSS, which holds every isolate, the runtime and the
 * allocator's slack. `watch` samples it while an operation runs and reports the peak.
 */
import WebSocket from "ws";

export type HeapUsage = {
  /** Bytes of live JavaScript objects. */
  usedSize: number;
  /** Bytes V8 reserved for the heap. */
  totalSize: number;
  /** Bytes of ArrayBuffer backing stores (byte arrays live outside the JS heap), when V8 reports them. */
  backingStorageSize?: number;
};

/** Live JavaScript objects plus ArrayBuffer backing stores: all the isolate holds for its Worker. */
export const withBuffers = (usage: HeapUsage) => usage.usedSize + (usage.backingStorageSize ?? 0);

export type IsolateHeap = {
  read(): Promise<HeapUsage>;
  /** The heap after a full garbage collection: what the isolate keeps alive, not what it has yet to free. */
  live(): Promise<HeapUsage>;
  /** Samples every `intervalMs` until the returned stop() resolves with the peaks seen. */
  watch(intervalMs?: number): { stop(): Promise<{ usedSize: number; withBuffers: number; samples: number }> };
  close(): void;
};

/** `target`: which of the inspector's isolates (the first is the hub's own Worker). */
export async function connectIsolateHeap(inspectorPort: number, target = 0): Promise<IsolateHeap> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const chosen = targets[target];
  if (!chosen) throw new Error(`no inspector target ${target} on port ${inspectorPort}`);
  const socket = new WebSocket(chosen.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
    if (message.id !== undefined) waiting.delete(message.id);
  });
  const call = <T>(method: string) =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve as (result: unknown) => void);
      socket.send(JSON.stringify({ id, method }));
    });
  const read = () => call<HeapUsage>("Runtime.getHeapUsage");
  // workerd does not answer HeapProfiler.collectGarbage; a snapshot collects first (its chunks, sent as
  // events, are ignored).
  const live = async () => {
    await call("HeapProfiler.takeHeapSnapshot");
    return read();
  };
  const watch = (intervalMs = 20) => {
    let usedSize = 0;
    let peakWithBuffers = 0;
    let samples = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const usage = await read();
        samples++;
        usedSize = Math.max(usedSize, usage.usedSize);
        peakWithBuffers = Math.max(peakWithBuffers, withBuffers(usage));
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return { usedSize, withBuffers: peakWithBuffers, samples };
      },
    };
  };
  return { read, live, watch, close: () => socket.close() };
}
