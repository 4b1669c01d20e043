/**
 * The events a relay received last (docs/events.md, "Relays"). A subscriber joining a relay is replayed by
 * the instance through the instance's newest event, and the relay may already have received more: those
 * come from here. Bounded in events and characters; a join that needs older ones asks the instance again.
 */
import type { SseEvent } from "./fanout";

const MAX_EVENTS = 2_000;
const MAX_CHARS = 4 * 1024 * 1024;

export class RelayHistory {
  private events: SseEvent[] = [];
  /** The events before this index are forgotten; the array is trimmed in batches, not on every add. */
  private first = 0;
  private chars = 0;

  constructor(
    private readonly maxEvents = MAX_EVENTS,
    private readonly maxChars = MAX_CHARS,
  ) {}

  /** Events come in increasing `seq`, without a gap. The newest is always kept. */
  add(event: SseEvent): void {
    this.events.push(event);
    this.chars += event.text.length;
    while (
      this.events.length - this.first > this.maxEvents ||
      (this.chars > this.maxChars && this.events.length - this.first > 1)
    ) {
      this.chars -= (this.events[this.first] as SseEvent).text.length;
      this.first++;
    }
    if (this.first > this.maxEvents) {
      this.events = this.events.slice(this.first);
      this.first = 0;
    }
  }

  /** Whether it holds every event after `seq` that it has received. */
  covers(seq: number): boolean {
    const oldest = this.events[this.first];
    return oldest !== undefined && seq >= oldest.seq - 1;
  }

  /** The messages of the events after `seq`, in order. */
  after(seq: number): string {
    let text = "";
    for (let i = this.first; i < this.events.length; i++) {
      const event = this.events[i] as SseEvent;
      if (event.seq > seq) text += event.text;
    }
    return text;
  }

  clear(): void {
    this.events = [];
    this.first = 0;
    this.chars = 0;
  }
}
