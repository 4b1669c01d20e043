/**
 * Reads a feed of SSE messages (a relay reads its instance's): the chunks of a byte stream in, whole events
 * out. Only messages with an `id:` are events; the retry line, heartbeats and notices without an id are
 * skipped (the relay sends its subscribers its own).
 */
import type { SseEvent } from "./fanout";

export class SseReader {
  private readonly decoder = new TextDecoder();
  /** The start of a message whose end has not arrived yet. */
  private partial = "";

  push(chunk: Uint8Array): SseEvent[] {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    let start = 0;
    for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n", start)) {
      if (text.startsWith("id: ", start)) {
        const seq = Number(text.slice(start + 4, text.indexOf("\n", start)));
        events.push({ seq, text: text.slice(start, end + 2) });
      }
      start = end + 2;
    }
    this.partial = text.slice(start);
    return events;
  }
}
