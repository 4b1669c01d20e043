/**
 * One API request's D1, through the Sessions API (read replication, docs/http-conventions.md "Read
 * replication"): every query of the request goes through one session, so reads may be served by a nearby
 * replica, yet never one older than the bookmark the session started from or than what the request wrote.
 * It stands in the binding's place in the request's env, so `getDb(env)` and better-auth work unchanged:
 * drizzle and better-auth's adapter only `prepare` and `batch`. It also counts the request's round trips to
 * D1 (a batch is one) and the time they took, which the API reports in `Server-Timing`, and can carry a
 * check with the request's first read (`carry`).
 */
import { ApiError } from "../errors";

/** The check a request carried was refused: nothing the request read may reach its client. */
export class StaleAccessError extends ApiError {
  constructor() {
    super(409, "access_changed", "Your access to this tenant changed during the request; send it again");
  }
}

type Carry = { statements: D1PreparedStatement[]; accept: (results: D1Result[]) => boolean };

export class RequestD1 implements D1Database {
  #session: D1DatabaseSession;
  readonly usage: D1Usage = { roundTrips: 0, ms: 0 };
  /** A check waiting for the request's first read. */
  #carry: Carry | null = null;
  /** The check's verdict once it was sent. */
  #verdict: Promise<boolean> | null = null;
  /** The newest bookmark of the sessions this request left behind. */
  #seen: string | null = null;
  #outsideWrites = false;

  constructor(
    /** The binding the session is of. */
    readonly binding: D1Database,
    constraintOrBookmark: D1SessionConstraint | D1SessionBookmark,
  ) {
    this.#session = binding.withSession(constraintOrBookmark);
  }

  prepare(query: string): D1PreparedStatement {
    return new RequestStatement(this, query, this.#session.prepare(query), []);
  }

  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    const real = statements.map((s) => (s instanceof RequestStatement ? s.real : s));
    const reads = statements.every((s) => s instanceof RequestStatement && s.isRead) ? () => real : null;
    return this.execute(
      reads,
      () => this.#session.batch<T>(real),
      (results) => results as D1Result<T>[],
    );
  }

  /** A statement of the session itself, for a query rewritten to be carried. */
  prepareReal(query: string): D1PreparedStatement {
    return this.#session.prepare(query);
  }

  /**
   * Sends `statements` with the request's first read, in the same round trip, instead of on their own;
   * `accept` judges their results before that read's rows reach anyone. Refused, that read and every later
   * query of the request throw `StaleAccessError`. A first query that writes, or cannot be carried along,
   * waits for them to be sent alone first.
   */
  carry(statements: D1PreparedStatement[], accept: (results: D1Result[]) => boolean): void {
    this.#carry = { statements, accept };
  }

  /** Whether the carried check was accepted; sent alone now if no query took it. True without one. */
  async carried(): Promise<boolean> {
    if (this.#carry) this.#send(this.#carry, []).catch(() => {});
    return this.#verdict ? this.#verdict : true;
  }

  /**
   * Runs a query of the request. `reads` are the real statements when it only reads and can carry the
   * pending check, whose results come first in the batch; `fromBatch` turns the rest into the query's own.
   */
  async execute<T>(
    reads: (() => D1PreparedStatement[]) | null,
    plain: () => Promise<T>,
    fromBatch: (results: D1Result[]) => T | Promise<T>,
  ): Promise<T> {
    const carry = this.#carry;
    if (carry && reads) return fromBatch(await this.#send(carry, reads()));
    if (carry) this.#send(carry, []).catch(() => {});
    if (this.#verdict && !(await this.#verdict)) throw new StaleAccessError();
    return timed(this.usage, plain);
  }

  /**
   * One round trip: the check's statements, then `reads`; the results of `reads` once the check is
   * accepted. Its verdict is kept for the queries that wait on it: false when refused or when the batch
   * failed (then nothing confirmed the access).
   */
  #send(carry: Carry, reads: D1PreparedStatement[]): Promise<D1Result[]> {
    this.#carry = null;
    const statements = [...carry.statements, ...reads].map((s) => (s instanceof RequestStatement ? s.real : s));
    const sent = timed(this.usage, () => this.#session.batch(statements)).then((results) => {
      if (!carry.accept(results.slice(0, carry.statements.length))) throw new StaleAccessError();
      return results.slice(carry.statements.length);
    });
    this.#verdict = sent.then(
      () => true,
      () => false,
    );
    return sent;
  }

  /** Not through the session, so its writes would be missing from the bookmark: nothing uses it. */
  exec(): Promise<D1ExecResult> {
    return Promise.reject(new Error("exec() bypasses the request's D1 session; use prepare() or batch()"));
  }

  dump(): Promise<ArrayBuffer> {
    return Promise.reject(new Error("dump() is not available on a request's D1 session"));
  }

  withSession(constraintOrBookmark?: D1SessionConstraint | D1SessionBookmark): D1DatabaseSession {
    return this.binding.withSession(constraintOrBookmark);
  }

  /**
   * A Durable Object, which writes through the plain binding, is about to act for this request. The rest
   * of the request reads from the primary, which has its writes, and a mutating request's bookmark will
   * cover them (`bookmark`).
   */
  writesElsewhere(): void {
    this.#seen = newest(this.#seen, this.#session.getBookmark());
    this.#session = this.binding.withSession("first-primary");
    this.#outsideWrites = true;
  }

  /**
   * The bookmark to hand the client: the newest this request saw. After a mutating request let a Durable
   * Object write, one read at the primary first, so the bookmark covers those writes too.
   */
  async bookmark(mutating: boolean): Promise<string | null> {
    if (mutating && this.#outsideWrites) {
      const primary = this.binding.withSession("first-primary");
      await primary.prepare("select 1").run();
      this.#seen = newest(this.#seen, primary.getBookmark());
    }
    return newest(this.#seen, this.#session.getBookmark());
  }
}

/** A request's D1 round trips and the milliseconds they took, summed. */
export type D1Usage = { roundTrips: number; ms: number };

async function timed<T>(usage: D1Usage, call: () => Promise<T>): Promise<T> {
  const start = Date.now();
  usage.roundTrips++;
  try {
    return await call();
  } finally {
    usage.ms += Date.now() - start;
  }
}

const SELECT = /^\s*select\b/i;
/** Array-index-like names come first among an object's keys, so their order would not be the columns'. */
const INDEX_LIKE = /^(0|[1-9][0-9]*)$/;

/** A statement of the request's session: counted when it runs, and able to carry the request's check. */
class RequestStatement implements D1PreparedStatement {
  constructor(
    private readonly owner: RequestD1,
    private readonly query: string,
    readonly real: D1PreparedStatement,
    private readonly values: unknown[],
  ) {}

  get isRead(): boolean {
    return SELECT.test(this.query);
  }

  bind(...values: unknown[]): D1PreparedStatement {
    return new RequestStatement(this.owner, this.query, this.real.bind(...values), values);
  }

  first<T = unknown>(colName?: string): Promise<T | null> {
    return this.owner.execute(
      this.isRead ? () => [this.real] : null,
      () => (colName === undefined ? this.real.first<T>() : this.real.first<T>(colName)),
      ([result]) => {
        const row = (result?.results[0] ?? null) as Record<string, unknown> | null;
        return (colName === undefined ? row : (row?.[colName] ?? null)) as T | null;
      },
    );
  }

  run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return this.owner.execute(
      null,
      () => this.real.run<T>(),
      ([result]) => result as D1Result<T>,
    );
  }

  all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return this.owner.execute(
      this.isRead ? () => [this.real] : null,
      () => this.real.all<T>(),
      ([result]) => result as D1Result<T>,
    );
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
  raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<[string[], ...T[]] | T[]> {
    if (options?.columnNames) {
      const named = () => this.real.raw<T>({ columnNames: true });
      return this.owner.execute(null, named, named);
    }
    // Carried in a batch, whose rows are objects keyed by column: selected through a subquery, whose
    // columns SQLite names uniquely and in order (`id`, `id:1`), so that the values come out as a row.
    const plain = () => this.real.raw<T>();
    return this.owner.execute<T[]>(this.isRead ? () => [this.#subquery()] : null, plain, ([result]) => {
      const rows = (result?.results ?? []) as Record<string, unknown>[];
      // Not faithfully a row: the check was accepted, so read it again on its own.
      if (rows.some((row) => Object.keys(row).some((key) => INDEX_LIKE.test(key)))) {
        return this.owner.execute(null, plain, plain);
      }
      return rows.map((row) => Object.values(row) as T);
    });
  }

  #subquery(): D1PreparedStatement {
    return this.owner.prepareReal(`select * from (${this.query})`).bind(...this.values);
  }
}

/** Bookmarks sort oldest to newest as strings. */
function newest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  return b !== null && b > a ? b : a;
}

/** Marks `env.DB`, when it is a request's session, as about to see writes made outside it. */
export function expectWritesElsewhere(env: Pick<Env, "DB">): void {
  if (env.DB instanceof RequestD1) env.DB.writesElsewhere();
}
