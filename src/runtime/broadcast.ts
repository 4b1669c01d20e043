/**
 * The SSE streams one object serves, and their coalesced delivery (docs/events.md, "Delivery and fan-out"):
 * an instance's subscribers and the feeds of its relays, or a relay's subscribers. Events go out in ticks;
 * a subscriber is written on its group's tick (`Fanout`), a relay's feed on every tick, so that a relay
 * adds at most one tick to its subscribers' wait.
 */
import { type Delivery, Fanout, nextTickDue, type SseEvent } from "./fanout";
import { HEARTBEAT_INTERVAL_MS } from "./protocol";

/**
 * What a stream's writer may hold, and what a stream that stopped reading may lack before it is dropped
 * (characters of events): one slow client never holds memory for the others.
 */
const MAX_BACKLOG = 8 * 1024 * 1024;

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");
/**
 * How often the heartbeat looks for quiet streams. A stream is beaten once it has been quiet for the
 * interval less one look, so none is silent longer than `HEARTBEAT_INTERVAL_MS`.
 */
const HEARTBEAT_LOOK_MS = HEARTBEAT_INTERVAL_MS / 3;
const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/** One SSE client's stream (or a relay's feed). */
type Stream = {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  feed: boolean;
  closed: boolean;
  /** Drops the stream when a write fails; made once, not a closure per write. */
  dropOnError: () => void;
};

export class Broadcast {
  private readonly subscribers = new Fanout<Stream>(MAX_BACKLOG);
  private readonly feeds = new Fanout<Stream>(MAX_BACKLOG);
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the next tick is due (`nextTickDue`); in the past while the stream is quiet. */
  private tickDue = 0;
  /** When the newest event or heartbeat went out: every live stream has been written to since (or joined). */
  private lastWriteAt = 0;

  /** Streams that are written when they can take it, the others skipped until they can. */
  private readonly offer: Delivery<Stream> = {
    // The writer counts the bytes it holds: any means the stream has not taken its previous write yet.
    busy: (stream) => (stream.writer.desiredSize ?? 0) < MAX_BACKLOG,
    write: (stream, bytes) => this.write(stream, bytes),
    drop: (stream) => this.drop(stream),
  };

  /** Every stream gets what it lacks, read or not (the last delivery before they close). */
  private readonly flush: Delivery<Stream> = { ...this.offer, busy: () => false };

  /**
   * `beforeSend` runs at the start of every tick, in the same synchronous step as its writes (the instance
   * persists its log there); `onCount` hears the number of subscribers (not feeds) when it changes.
   */
  constructor(
    private readonly beforeSend: () => void = () => {},
    private readonly onCount: (subscribers: number) => void = () => {},
  ) {}

  get size(): number {
    return this.subscribers.size;
  }

  /**
   * A stream that gets `head` (its replay), then every event after `throughSeq`; with `throughSeq` null it
   * ends after `head`. A `feed` (a relay's) is written on every tick.
   */
  open(head: string, throughSeq: number | null, feed = false): Response {
    // workerd's native byte pipe: chunks reach the response without a JavaScript stream in between (in the
    // SSE benchmark this costs 20-60 % less CPU per delivered event). Its writer counts bytes (`busy`).
    const { readable, writable } = new IdentityTransformStream({ highWaterMark: MAX_BACKLOG });
    const stream: Stream = { writer: writable.getWriter(), feed, closed: false, dropOnError: () => this.drop(stream) };
    this.write(stream, encoder.encode(head));
    if (throughSeq === null) {
      stream.writer.close().catch(() => {});
    } else {
      (feed ? this.feeds : this.subscribers).add(stream, throughSeq);
      if (!feed) this.onCount(this.subscribers.size);
      this.heartbeat ??= setInterval(() => this.beat(), HEARTBEAT_LOOK_MS);
    }
    return new Response(readable, { headers: SSE_HEADERS });
  }

  /** An event for every stream; a tick sends it. */
  push(event: SseEvent): void {
    this.subscribers.push(event);
    this.feeds.push(event);
    this.lastWriteAt = Date.now();
    this.scheduleTick();
  }

  /** Sends every stream what it lacks, then ends them all. */
  closeAll(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    this.beforeSend();
    this.subscribers.drain(this.flush);
    this.feeds.drain(this.flush);
    for (const stream of [...this.subscribers.sinks(), ...this.feeds.sinks()]) {
      this.release(stream);
      stream.writer.close().catch(() => {});
    }
  }

  /** The next tick runs when it is due: at once when the stream was quiet. */
  private scheduleTick(): void {
    if (this.tickTimer) return;
    this.tickTimer = setTimeout(() => this.tick(), Math.max(0, this.tickDue - Date.now()));
  }

  /** Serves the next group of subscribers and every feed; ticks go on while some stream lacks events. */
  private tick(): void {
    this.tickTimer = null;
    this.tickDue = nextTickDue(this.tickDue, Date.now(), this.subscribers.schedule().tickMs);
    this.beforeSend();
    const subscribersBehind = this.subscribers.tick(this.offer);
    const feedsBehind = this.feeds.drain(this.offer);
    if (subscribersBehind || feedsBehind) this.scheduleTick();
  }

  /** Only idle streams need a heartbeat; writing every stream at once would also stall live delivery. */
  private beat(): void {
    if (Date.now() - this.lastWriteAt < HEARTBEAT_INTERVAL_MS - HEARTBEAT_LOOK_MS) return;
    this.lastWriteAt = Date.now();
    for (const stream of [...this.subscribers.sinks(), ...this.feeds.sinks()]) {
      if (!this.offer.busy(stream)) this.write(stream, HEARTBEAT);
    }
  }

  private write(stream: Stream, bytes: Uint8Array): void {
    if (!stream.closed) stream.writer.write(bytes).catch(stream.dropOnError);
  }

  private drop(stream: Stream): void {
    if (stream.closed) return;
    this.release(stream);
    stream.writer.abort().catch(() => {});
  }

  /** A stream leaves its fan-out; the heartbeat stops with the last one. */
  private release(stream: Stream): void {
    stream.closed = true;
    if (stream.feed) this.feeds.remove(stream);
    else if (this.subscribers.remove(stream)) this.onCount(this.subscribers.size);
    if (this.subscribers.size + this.feeds.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }
}
