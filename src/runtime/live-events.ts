/**
 * The live side of one instance's events: each is numbered and kept in the replayable log, and sent to the
 * SSE subscribers in coalesced ticks (docs/events.md). A new subscriber gets the events after its cursor
 * (or the text of the turn in flight), then the live ones, with no gap and no repeat.
 */
import { Broadcast } from "./broadcast";
import { EventLog, type LoggedEvent } from "./event-log";
import { sseMessage, sseMessages } from "./fanout";
import type { RelayJoin } from "./relay-routing";

/** Retention of the replayable event log (docs/events.md). */
export const EVENT_LOG_MAX_EVENTS = 10_000;
export const EVENT_LOG_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const SSE_RETRY_MS = 3_000;

/** Where a subscriber resumes: `Last-Event-ID`, else `?cursor=`; null for a new subscriber. */
export function resumeCursor(request: Request): number | null {
  const raw = request.headers.get("last-event-id") ?? new URL(request.url).searchParams.get("cursor");
  return raw !== null && /^\d{1,15}$/.test(raw) ? Number(raw) : null;
}

/** The turn a new subscriber joins in the middle of, with its text so far. */
export type TurnInFlight = { turnId: string; text: string };

export class LiveEvents {
  private readonly log: EventLog;
  private readonly streams: Broadcast;

  /** `persisted` runs right after each write of the log, in the same synchronous step. */
  constructor(sql: SqlStorage, persisted: () => void = () => {}) {
    this.log = new EventLog(sql, { maxEvents: EVENT_LOG_MAX_EVENTS, maxAgeMs: EVENT_LOG_MAX_AGE_MS });
    // Each tick persists what was recorded and sends it in one synchronous step: the output gate then
    // releases the writes only once their rows are durable.
    this.streams = new Broadcast(() => {
      this.log.persist();
      persisted();
    });
  }

  /** Appends an event with the next sequence number; a tick persists it and sends it. */
  record(type: string, data: unknown): number {
    const event = this.log.append(type, JSON.stringify(data ?? {}));
    this.streams.push({ seq: event.seq, text: sseMessage(event.seq, event.type, event.data) });
    return event.seq;
  }

  lastSeq(): number {
    return this.log.lastSeq();
  }

  /** SSE subscribers this object serves itself (not the relays' feeds). */
  get subscribers(): number {
    return this.streams.size;
  }

  /** Every event the log still holds, oldest first. */
  logged(): LoggedEvent[] {
    return this.log.since(0);
  }

  /**
   * A subscriber's stream: the events after `cursor` (or the turn in flight, without a cursor), then the
   * live ones; an instance that has ended sends the replay and closes. From the replay to the live stream
   * nothing awaits: they meet without a gap or a repeat.
   */
  open(cursor: number | null, inFlight: TurnInFlight | null, ended: boolean): Response {
    return this.streams.open(this.replay(cursor, inFlight), ended ? null : this.log.lastSeq());
  }

  /**
   * A relay's feed (docs/events.md, "Relays"): the events after `cursor`, then every event, on every tick.
   * `seqHeader` tells the relay the last event before its feed's live part.
   */
  openFeed(cursor: number | null, ended: boolean, seqHeader: string): Response {
    const res = this.streams.open(this.replay(cursor, null), ended ? null : this.log.lastSeq(), true);
    res.headers.set(seqHeader, String(this.log.lastSeq()));
    return res;
  }

  /** What a relay's new subscriber gets first: its replay, as `open` would send it, and the last event in it. */
  replayFor(cursor: number | null, inFlight: TurnInFlight | null, ended: boolean): RelayJoin {
    return { head: this.replay(cursor, inFlight), throughSeq: this.log.lastSeq(), ended };
  }

  /** Sends every stream what it lacks, then ends them all (the instance stopped). */
  closeAll(): void {
    this.streams.closeAll();
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
}
