/**
 * One API request's D1, through the Sessions API (read replication, docs/http-conventions.md "Read
 * replication"): every query of the request goes through one session, so reads may be served by a nearby
 * replica, yet never one older than the bookmark the session started from or than what the request wrote.
 * It stands in the binding's place in the request's env, so `getDb(env)` and better-auth work unchanged:
 * drizzle and better-auth's adapter only `prepare` and `batch`.
 */
export class RequestD1 implements D1Database {
  #session: D1DatabaseSession;
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
    return this.#session.prepare(query);
  }

  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    return this.#session.batch<T>(statements);
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

/** Bookmarks sort oldest to newest as strings. */
function newest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  return b !== null && b > a ? b : a;
}

/** Marks `env.DB`, when it is a request's session, as about to see writes made outside it. */
export function expectWritesElsewhere(env: Pick<Env, "DB">): void {
  if (env.DB instanceof RequestD1) env.DB.writesElsewhere();
}
