/**
 * A relay object's share of an instance's audience (docs/events.md, "Relays"): one feed from the instance's
 * object, read as SSE, and its own subscribers, served as the instance serves its own (`Broadcast`).
 *
 * A subscriber joining here is replayed by the instance (after its cursor, or the turn in flight) through
 * the instance's newest event; the relay adds what it received after that from its history, and the
 * subscriber then follows the feed. The feed is dense (each event's seq is the previous one's + 1): one
 * that skips means the relay was away longer than the log keeps, and the relay ends its streams, whose
 * clients resume from the instance with their own Last-Event-ID.
 */
import { Broadcast } from "./broadcast";
import type { SseEvent } from "./fanout";
import { RelayHistory } from "./relay-history";
import { FEED_SEQ_HEADER, RELAY_HEADER, RELAY_MEMBERS_HEADER, type RelayJoin } from "./relay-routing";
import { SseReader } from "./sse-reader";
import type { instanceObject } from "./stubs";

/** A broken feed is opened again after this long, from the relay's last event: nothing is lost. */
const RECONNECT_MS = 1_000;
/** A relay without subscribers keeps its feed this long, then lets it go. */
const IDLE_MS = 30_000;
/** The relay tells the instance how many it serves at most this often (the instance fills relays in order). */
const LOAD_REPORT_MS = 1_000;

type InstanceStub = ReturnType<typeof instanceObject>;

export class EventRelay {
  private readonly streams = new Broadcast(undefined, (count) => this.audienceChanged(count));
  private readonly history = new RelayHistory();
  /** The newest event received; null before the feed started. */
  private last: number | null = null;
  /** The feed, being opened or open; null when there is none. */
  private feed: Promise<void> | null = null;
  /** What reads the open feed; a loop whose reader is no longer this one stops quietly. */
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  /** The instance ended the feed: it has stopped. */
  private ended = false;
  /** Joins waiting for the instance: the feed is not let go under them. */
  private joining = 0;
  /** Counts the feeds let go: a feed that opens after its relay let it go is closed at once. */
  private generation = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private reportTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly instance: InstanceStub,
    private readonly index: number,
  ) {}

  /** A subscriber's stream: the instance's replay, the events the relay got since, then the live ones. */
  async open(cursor: number | null): Promise<Response> {
    this.joining++;
    try {
      await this.connect();
      const members = this.streams.size + 1;
      let join: RelayJoin = await this.instance.relayJoin(this.index, members, cursor);
      // The relay got further than its history reaches while the instance answered: the log fills the gap.
      while (
        !join.ended &&
        this.last !== null &&
        join.throughSeq < this.last &&
        !this.history.covers(join.throughSeq)
      ) {
        const more = await this.instance.relayJoin(this.index, members, join.throughSeq);
        join = { head: join.head + more.head, throughSeq: more.throughSeq, ended: more.ended };
      }
      // From here to the stream's start nothing awaits: the feed's next event is the subscriber's next one.
      const head = join.head + this.history.after(join.throughSeq);
      if (join.ended || this.ended) return this.streams.open(head, null);
      return this.streams.open(head, Math.max(join.throughSeq, this.last ?? join.throughSeq));
    } finally {
      this.joining--;
    }
  }

  private connect(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.feed ??= this.openFeed().catch((err) => {
      this.feed = null;
      throw err;
    });
    return this.feed;
  }

  /** Asks the instance for its feed, from the relay's last event (or from now, the first time). */
  private async openFeed(): Promise<void> {
    const generation = this.generation;
    const res = await this.instance.fetch(
      new Request(`https://do/events${this.last === null ? "" : `?cursor=${this.last}`}`, {
        headers: { [RELAY_HEADER]: String(this.index), [RELAY_MEMBERS_HEADER]: String(this.streams.size) },
      }),
    );
    if (!res.ok || !res.body) throw new Error(`the instance refused the relay's feed (${res.status})`);
    if (generation !== this.generation) {
      await res.body.cancel();
      return;
    }
    this.last ??= Number(res.headers.get(FEED_SEQ_HEADER));
    const reader = res.body.getReader();
    this.reader = reader;
    this.read(reader);
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const events = new SseReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of events.push(value)) this.receive(event);
      }
    } catch {
      if (this.reader === reader) this.lost();
      return;
    }
    // The instance ends its feeds only when it stops.
    if (this.reader === reader) this.finish();
  }

  private receive(event: SseEvent): void {
    if (this.last !== null && event.seq <= this.last) return;
    if (this.last !== null && event.seq > this.last + 1) {
      this.history.clear();
      this.streams.closeAll();
    }
    this.last = event.seq;
    this.history.add(event);
    this.streams.push(event);
  }

  /** The feed broke: opened again from the last event while anyone listens. */
  private lost(): void {
    this.feed = null;
    this.reader = null;
    if (this.streams.size === 0) return;
    setTimeout(() => this.connect().catch(() => this.lost()), RECONNECT_MS);
  }

  private finish(): void {
    this.ended = true;
    this.feed = null;
    this.reader = null;
    this.streams.closeAll();
  }

  private audienceChanged(count: number): void {
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = null;
      this.instance.relayLoad(this.index, this.streams.size).catch(() => {});
    }, LOAD_REPORT_MS);
    if (count > 0 && this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    } else if (count === 0) {
      this.idleTimer ??= setTimeout(() => this.idle(), IDLE_MS);
    }
  }

  /** Nobody listened for a while: the feed goes; the next subscriber starts a new one. */
  private idle(): void {
    this.idleTimer = null;
    if (this.streams.size > 0 || this.joining > 0) return;
    const reader = this.reader;
    this.generation++;
    this.reader = null;
    this.feed = null;
    this.last = null;
    this.history.clear();
    reader?.cancel().catch(() => {});
  }
}
