/**
 * The replayable event log of one instance (docs/events.md), in its Durable Object's SQLite storage.
 *
 * `append` numbers an event at once but keeps it in memory; `persist` writes everything appended since in
 * one go. The instance object persists and sends to subscribers in the same synchronous step, so the output
 * gate still holds every frame until the rows holding it are durable, while a stream of tokens costs one
 * commit per flush tick instead of one per token. Every read persists first, so a reader never misses an
 * event that was already numbered.
 */

export type LoggedEvent = { seq: number; type: string; data: string; at: number };

export type EventLogLimits = { maxEvents: number; maxAgeMs: number };

/** Retention is applied whenever the sequence crosses a multiple of this. */
const PRUNE_EVERY = 500;

export class EventLog {
  private last: number;
  private unsaved: LoggedEvent[] = [];

  constructor(
    private readonly sql: SqlStorage,
    private readonly limits: EventLogLimits,
  ) {
    sql.exec(
      "create table if not exists event (seq integer primary key, type text not null, data text not null, at integer not null)",
    );
    // The last number handed out, kept apart from the rows: retention may delete them all, and a sequence
    // that started again would make clients' Last-Event-ID point at the wrong events.
    sql.exec("create table if not exists event_seq (id integer primary key check (id = 1), last integer not null)");
    const kept = sql.exec<{ last: number }>("select last from event_seq where id = 1").toArray()[0]?.last ?? 0;
    const max = sql.exec<{ seq: number | null }>("select max(seq) as seq from event").one().seq ?? 0;
    this.last = Math.max(kept, max);
  }

  /** Numbers an event; it is written by the next `persist`. `data` is the event's JSON. */
  append(type: string, data: string, at: number = Date.now()): LoggedEvent {
    const event = { seq: ++this.last, type, data, at };
    this.unsaved.push(event);
    return event;
  }

  /** Writes the appended events and applies retention (the newest maxEvents, none older than maxAgeMs). */
  persist(): void {
    const events = this.unsaved;
    if (events.length === 0) return;
    this.unsaved = [];
    for (const e of events) {
      this.sql.exec("insert into event (seq, type, data, at) values (?, ?, ?, ?)", e.seq, e.type, e.data, e.at);
    }
    this.sql.exec(
      "insert into event_seq (id, last) values (1, ?) on conflict (id) do update set last = excluded.last",
      this.last,
    );
    const first = events[0] as LoggedEvent;
    if (Math.floor((first.seq - 1) / PRUNE_EVERY) !== Math.floor(this.last / PRUNE_EVERY)) {
      this.sql.exec(
        "delete from event where seq <= ? or at < ?",
        this.last - this.limits.maxEvents,
        Date.now() - this.limits.maxAgeMs,
      );
    }
  }

  /** The number of the newest event (0 before the first). */
  lastSeq(): number {
    return this.last;
  }

  /** The oldest event still kept, or null when none is. */
  oldestSeq(): number | null {
    this.persist();
    return this.sql.exec<{ seq: number | null }>("select min(seq) as seq from event").one().seq;
  }

  /** Every kept event after `cursor`, oldest first. */
  since(cursor: number): LoggedEvent[] {
    this.persist();
    return this.sql
      .exec<LoggedEvent>("select seq, type, data, at from event where seq > ? order by seq", cursor)
      .toArray();
  }
}
