/**
 * Fan-out of one instance's events to its SSE subscribers (docs/events.md, "Delivery and fan-out").
 *
 * A write to a subscriber costs tens of microseconds whatever its size, so events are coalesced: each
 * subscriber is written to at most once per interval, and the interval grows with the number of
 * subscribers, which bounds the writes per second of one object. Subscribers are served in groups on
 * staggered ticks: a tick writes to one group, so the object stays free for the sidecar's frames between
 * ticks, and the last subscriber of a tick waits for its group rather than for every other subscriber.
 * Every subscriber receives every event once, in order, whatever the grouping (`throughSeq`).
 */

import type { LoggedEvent } from "./event-log";

/** Subscribers served per tick (at most; more when ticks would come closer than MIN_TICK_MS). */
const GROUP_SIZE = 50;
/** Per-subscriber interval: at least MIN, growing by PER_SUBSCRIBER, at most MAX. */
const MIN_INTERVAL_MS = 25;
const MAX_INTERVAL_MS = 100;
const INTERVAL_PER_SUBSCRIBER_MS = 0.1;
/** Ticks closer than this would cost more in timers and commits than they save; groups grow instead. */
const MIN_TICK_MS = 5;

export type FanoutSchedule = {
  /** How often each subscriber is written to while events keep coming. */
  intervalMs: number;
  /** Subscribers are served one group per tick, round-robin. */
  groups: number;
  /** Time between two ticks: intervalMs / groups. */
  tickMs: number;
};

export function fanoutSchedule(subscribers: number): FanoutSchedule {
  const intervalMs = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, subscribers * INTERVAL_PER_SUBSCRIBER_MS));
  const groups = Math.max(1, Math.min(Math.ceil(subscribers / GROUP_SIZE), Math.floor(intervalMs / MIN_TICK_MS)));
  return { intervalMs, groups, tickMs: intervalMs / groups };
}

/**
 * When the next tick is due, after one due at `due` ran at `ranAt`. Ticks keep their cadence through a
 * timer's ordinary lateness (a millisecond or two: counting from when each tick ran stretched a 50 ms
 * interval to about 65 ms). A tick later than half a tick means the object, or its machine, is busy: the
 * cadence starts again from when it ran, so the interval stretches and coalesces more instead of piling
 * ticks up.
 */
export function nextTickDue(due: number, ranAt: number, tickMs: number): number {
  return ranAt - due <= tickMs / 2 ? due + tickMs : ranAt + tickMs;
}

const encoder = new TextEncoder();

/** An event as subscribers receive it: its sequence number and its SSE message, rendered once. */
export type SseEvent = { readonly seq: number; readonly text: string };

/** One SSE message: `id:` is the sequence number, `data` the event `{type, seq, data}`. */
export function sseMessage(seq: number, type: string, dataJson: string): string {
  return `id: ${seq}\nevent: agent.event\ndata: {"type":${JSON.stringify(type)},"seq":${seq},"data":${dataJson}}\n\n`;
}

export function sseMessages(events: readonly LoggedEvent[]): string {
  let text = "";
  for (const e of events) text += sseMessage(e.seq, e.type, e.data);
  return text;
}

/**
 * How a tick reaches its sinks. A sink still busy with its previous chunk is skipped and served on a later
 * round with everything it lacks by then: when the runtime falls behind, chunks grow instead of queueing
 * up in the streams (measured: with queued writes, an object asked for more writes than it could do went
 * from 100 ms to seconds of delay).
 */
export type Delivery<S> = {
  busy(sink: S): boolean;
  write(sink: S, bytes: Uint8Array): void;
  /** A busy sink that lacks more than the fan-out's `maxLag`: it has stopped reading. */
  drop(sink: S): void;
};

/**
 * A subscriber as the fan-out sees it: where to send, the newest event it has been sent, and how many
 * characters of events had been pushed by then (what it lacks is `pushed - throughChars`).
 */
type Member<S> = { readonly sink: S; throughSeq: number; throughChars: number };

/**
 * `S` is whatever the caller sends to (an SSE stream); each sink is a member once.
 *
 * Members live in an array walked with indexes: a tick runs every few milliseconds over hundreds of
 * members, and iterating a Map there would allocate an entry per member per tick, garbage that the
 * object's isolate then has to collect between deliveries.
 */
export class Fanout<S> {
  private readonly members: Member<S>[] = [];
  /** Events that some member has not been sent yet, oldest first. */
  private recent: SseEvent[] = [];
  private last = 0;
  /** Characters of every event pushed so far. */
  private pushed = 0;
  private tickIndex = 0;

  /** `maxLag`: characters a busy member may lack before it is dropped. */
  constructor(private readonly maxLag = Number.POSITIVE_INFINITY) {}

  get size(): number {
    return this.members.length;
  }

  schedule(): FanoutSchedule {
    return fanoutSchedule(this.members.length);
  }

  /**
   * A new member that has been sent everything through `throughSeq` (its replay). It may be ahead of the
   * newest event pushed (a relay's subscriber, replayed by the instance): the events up to it are skipped.
   */
  add(sink: S, throughSeq: number): void {
    if (this.members.some((m) => m.sink === sink)) return;
    this.members.push({ sink, throughSeq, throughChars: this.pushed });
  }

  /** The last member takes the leaver's place (and so, for a round, its group). Joins and leaves are rare. */
  remove(sink: S): boolean {
    const index = this.members.findIndex((m) => m.sink === sink);
    if (index < 0) return false;
    const last = this.members.pop() as Member<S>;
    if (index < this.members.length) this.members[index] = last;
    return true;
  }

  sinks(): S[] {
    return this.members.map((m) => m.sink);
  }

  /** An event to deliver; events come in increasing `seq`. */
  push(event: SseEvent): void {
    this.last = event.seq;
    this.pushed += event.text.length;
    if (this.members.length > 0) this.recent.push(event);
  }

  /** Whether some member has not been sent everything yet. */
  pending(): boolean {
    return this.oldestThroughSeq() < this.last;
  }

  /**
   * Serves the next group, round-robin (the members whose index falls in it): each that is behind gets one
   * chunk with every event it lacks. Members behind by the same amount share the same bytes. Returns
   * whether anyone is still behind.
   */
  tick(delivery: Delivery<S>): boolean {
    const { groups } = this.schedule();
    return this.deliver(delivery, this.tickIndex++ % groups, groups);
  }

  /** Serves every member; returns whether anyone is still behind. */
  drain(delivery: Delivery<S>): boolean {
    return this.deliver(delivery, 0, 1);
  }

  /** Sends the members at first, first + step, … what they lack; returns whether anyone is still behind. */
  private deliver(delivery: Delivery<S>, first: number, step: number): boolean {
    const chunks = new Map<number, Uint8Array>();
    for (let i = first; i < this.members.length; i += step) {
      const member = this.members[i] as Member<S>;
      this.serve(member, delivery, chunks);
      // Serving may remove the member (a dead stream): whoever took its place is served in its stead.
      if (this.members[i] !== member) i -= step;
    }
    // One pass over the members after the writes: what to forget, and whether anyone is still behind.
    const oldest = this.oldestThroughSeq();
    const keep = this.recent.findIndex((e) => e.seq > oldest);
    this.recent = keep < 0 ? [] : this.recent.slice(keep);
    return oldest < this.last;
  }

  /** One chunk with every event the member lacks, shared with those behind by as much (`chunks`). */
  private serve(member: Member<S>, delivery: Delivery<S>, chunks: Map<number, Uint8Array>): void {
    if (member.throughSeq >= this.last) return;
    if (!delivery.busy(member.sink)) {
      const from = member.throughSeq;
      let chunk = chunks.get(from);
      if (!chunk) {
        chunk = this.chunkAfter(from);
        chunks.set(from, chunk);
      }
      member.throughSeq = this.last;
      member.throughChars = this.pushed;
      delivery.write(member.sink, chunk);
    } else if (this.pushed - member.throughChars > this.maxLag) {
      delivery.drop(member.sink);
    }
  }

  private chunkAfter(from: number): Uint8Array {
    let text = "";
    for (const e of this.recent) if (e.seq > from) text += e.text;
    return encoder.encode(text);
  }

  private oldestThroughSeq(): number {
    let oldest = this.last;
    for (let i = 0; i < this.members.length; i++) oldest = Math.min(oldest, (this.members[i] as Member<S>).throughSeq);
    return oldest;
  }
}
