/**
 * The live side of one instance's events: each is numbered and kept in the replayable log, and sent to the
 * SSE subscribers in coalesced ticks (docs/events.md). A new subscriber gets the events after its cursor
 * (or the text of the turn in flight), then the live ones, with no gap and no repeat.
 */
import { EventLog, type LoggedEvent } from "./event-log";
import { Fanout, nextTickDue, sseMessages } from "./fanout";
import { HEARTBEAT_INTERVAL_MS } from "./protocol";

/** Retention of the replayable event log (docs/events.md). */
export const EVENT_LOG_MAX_EVENTS = 10_000;
export const EVENT_LOG_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const SSE_RETRY_MS = 3_000;
/** A subscriber this far behind (bytes queued) is dropped rather than buffered without bound. */
const MAX_SUBSCRIBER_BACKLOG = 8 * 1024 * 1024;

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");

/** One SSE client's stream. */
type Subscriber = {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  closed: boolean;
  /** Drops the subscriber when a write fails; made once, not a closure per write. */
  dropOnError: () => void;
};

/** Where a subscriber resumes: `Last-Event-ID`, else `?cursor=`; null for a new subscriber. */
export function resumeCursor(request: Request): number | null {
  const raw = request.headers.get("last-event-id") ?? new URL(request.url).searchParams.get("cursor");
  return raw !== null && /^\d{1,15}$/.test(raw) ? Number(raw) : null;
}

/** The turn a new subscriber joins in the middle of, with its text so far. */
export type TurnInFlight = { turnId: string; text: string };

export class LiveEvents {
  private readonly log: EventLog;
  private readonly fanout = new Fanout<Subscriber>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the next fan-out tick is due (`nextTickDue`); in the past while the stream is quiet. */
  private tickDue = 0;
  /** When the newest event was recorded: every live subscriber has been written to since (or joined since). */
  private lastEventAt = 0;

  /** `persisted` runs right after each write of the log, in the same synchronous step. */
  constructor(
    sql: SqlStorage,
    private readonly persisted: () => void = () => {},
  ) {
    this.log = new EventLog(sql, { maxEvents: EVENT_LOG_MAX_EVENTS, maxAgeMs: EVENT_LOG_MAX_AGE_MS });
  }

  /** Appends an event with the next sequence number; a tick persists it and sends it. */
  record(type: string, data: unknown): number {
    const event = this.log.append(type, JSON.stringify(data ?? {}));
    this.fanout.push(event);
    this.lastEventAt = Date.now();
    this.scheduleTick();
    return event.seq;
  }

  lastSeq(): number {
    return this.log.lastSeq();
  }

  /** Every event the log still holds, oldest first. */
  logged(): LoggedEvent[] {
    return this.log.since(0);
  }

  /**
   * A subscriber's stream: the events after `cursor` (or the turn in flight, without a cursor), then the
   * live ones; an instance that has ended sends the replay and closes.
   */
  open(cursor: number | null, inFlight: TurnInFlight | null, ended: boolean): Response {
    // workerd's native byte pipe: chunks reach the response without a JavaScript stream in between (in the
    // SSE benchmark this costs 20-60 % less CPU per delivered event). Its writer counts bytes: desiredSize
    // goes below zero once more than MAX_SUBSCRIBER_BACKLOG bytes wait unread.
    const { readable, writable } = new IdentityTransformStream({ highWaterMark: MAX_SUBSCRIBER_BACKLOG });
    const sub: Subscriber = { writer: writable.getWriter(), closed: false, dropOnError: () => this.drop(sub) };
    // From the replay to `add`, nothing awaits: the replay and the live stream meet without a gap or a repeat.
    this.send(sub, encoder.encode(this.replay(cursor, inFlight)));
    if (ended) {
      sub.writer.close().catch(() => {});
    } else {
      this.fanout.add(sub, this.log.lastSeq());
      this.heartbeat ??= setInterval(() => this.beat(), HEARTBEAT_INTERVAL_MS);
    }
    return new Response(readable, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Sends every stream what it lacks, then ends them all (the instance stopped). */
  closeAll(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    this.persist();
    this.fanout.drain((sub, bytes) => this.send(sub, bytes));
    for (const sub of this.fanout.sinks()) {
      this.release(sub);
      sub.writer.close().catch(() => {});
    }
  }

  private replay(cursor: number | null, inFlight: TurnInFlight | null): string {
    let text = `retry: ${SSE_RETRY_MS}\n\n`;
    if (cursor !== null) {
      const oldest = this.log.oldestSeq();
      if (oldest !== null && cursor < oldest - 1) {
        const expired = {
          type: "cursor_expired",
          data: {
            cursor,
            oldestAvailable: oldest,
            message: "Events after this cursor are no longer kept; reload history over REST",
          },
        };
        text += `event: agent.event\ndata: ${JSON.stringify(expired)}\n\n`;
      }
      return text + sseMessages(this.log.since(cursor));
    }
    if (inFlight) {
      const replayed = {
        type: "inference.text.replay",
        data: { turnId: inFlight.turnId, text: inFlight.text, throughSeq: this.log.lastSeq() },
      };
      text += `event: agent.event\ndata: ${JSON.stringify(replayed)}\n\n`;
    }
    return text;
  }

  /** The next tick runs when it is due: at once when the stream was quiet. */
  private scheduleTick(): void {
    if (this.tickTimer) return;
    this.tickTimer = setTimeout(() => this.tick(), Math.max(0, this.tickDue - Date.now()));
  }

  /**
   * Persists what was recorded and sends it to the next group of subscribers, in one synchronous step (the
   * output gate then releases the frames only once their rows are durable). Ticks go on while some
   * subscriber lacks events.
   */
  private tick(): void {
    this.tickTimer = null;
    this.tickDue = nextTickDue(this.tickDue, Date.now(), this.fanout.schedule().tickMs);
    this.persist();
    if (this.fanout.tick((sub, bytes) => this.send(sub, bytes))) this.scheduleTick();
  }

  private persist(): void {
    this.log.persist();
    this.persisted();
  }

  /** Only idle streams need a heartbeat; writing every subscriber at once would also stall live delivery. */
  private beat(): void {
    if (Date.now() - this.lastEventAt < HEARTBEAT_INTERVAL_MS) return;
    for (const sub of this.fanout.sinks()) this.send(sub, HEARTBEAT);
  }

  private send(sub: Subscriber, bytes: Uint8Array): void {
    if (sub.closed) return;
    // The writable side counts bytes: below zero, the client is MAX_SUBSCRIBER_BACKLOG behind.
    if ((sub.writer.desiredSize ?? 0) < 0) {
      this.drop(sub);
      return;
    }
    sub.writer.write(bytes).catch(sub.dropOnError);
  }

  private drop(sub: Subscriber): void {
    if (sub.closed) return;
    this.release(sub);
    sub.writer.abort().catch(() => {});
  }

  /** A subscriber leaves the fan-out; the heartbeat stops with the last one. */
  private release(sub: Subscriber): void {
    sub.closed = true;
    this.fanout.remove(sub);
    if (this.fanout.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }
}
