/**
 * A minimal Server-Sent Events client over fetch, as a browser's EventSource would parse the stream:
 * it records every message with its id, and can be closed and reopened with Last-Event-ID.
 */
export type SseMessage = { id: string | null; event: string; data: any };

export class SseClient {
  readonly messages: SseMessage[] = [];
  comments = 0;
  retry: number | null = null;
  private controller = new AbortController();
  private done: Promise<void> | null = null;
  private waiters: { predicate: (m: SseMessage[]) => boolean; resolve: () => void }[] = [];
  status = 0;

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
  ) {}

  async open(lastEventId?: string): Promise<void> {
    this.controller = new AbortController();
    const headers = { ...this.headers, accept: "text/event-stream" } as Record<string, string>;
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const res = await fetch(this.url, { headers, signal: this.controller.signal });
    this.status = res.status;
    if (!res.ok || !res.body) throw new Error(`SSE ${res.status}: ${await res.text()}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    this.done = (async () => {
      let buffer = "";
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end = buffer.indexOf("\n\n");
          while (end >= 0) {
            this.parse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf("\n\n");
          }
        }
      } catch {
        // aborted
      }
    })();
  }

  private parse(block: string) {
    let id: string | null = null;
    let event = "message";
    const data: string[] = [];
    let hasField = false;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        this.comments++;
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "retry") this.retry = Number(value);
      else continue;
      hasField = true;
    }
    if (!hasField || data.length === 0) return;
    this.messages.push({ id, event, data: JSON.parse(data.join("\n")) });
    for (const w of [...this.waiters]) {
      if (w.predicate(this.messages)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Resolves when `predicate` holds for the messages received so far. */
  waitFor(predicate: (messages: SseMessage[]) => boolean, timeoutMs = 20_000): Promise<void> {
    if (predicate(this.messages)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`SSE wait timed out; got types: ${this.messages.map((m) => m.data?.type).join(", ")}`));
      }, timeoutMs);
      this.waiters.push({
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  types(): string[] {
    return this.messages.map((m) => m.data?.type);
  }

  lastId(): string | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const id = this.messages[i]?.id;
      if (id) return id;
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}
