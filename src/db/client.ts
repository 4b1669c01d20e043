import { AsyncLocalStorage } from "node:async_hooks";
import { drizzle } from "drizzle-orm/d1";
import { RequestD1 } from "./request-d1";
import * as schema from "./schema";

const connect = (d1: D1Database) => drizzle(d1, { schema });

export type Db = ReturnType<typeof connect>;

/**
 * Building a client walks the whole schema (about 2 ms of CPU and 20 KB of garbage), so clients are built
 * once per D1 binding: one over the binding itself, and one for the API requests' D1 sessions, which sends
 * each query to the session of the request it runs in (`runInRequestD1`).
 */
const plainClients = new WeakMap<D1Database, Db>();
const sessionClients = new WeakMap<D1Database, Db>();
const currentRequestD1 = new AsyncLocalStorage<RequestD1>();

/** Runs `fn` (the rest of an API request) with `d1` as the D1 of its queries made through `getDb`. */
export function runInRequestD1<T>(d1: RequestD1, fn: () => T): T {
  return currentRequestD1.run(d1, fn);
}

/** A D1 that hands each statement to the session of the request running it (the binding outside one). */
function sessionRouter(binding: D1Database): D1Database {
  const target = (): D1Database => {
    const d1 = currentRequestD1.getStore();
    return d1?.binding === binding ? d1 : binding;
  };
  return {
    prepare: (query) => target().prepare(query),
    batch: (statements) => target().batch(statements),
    exec: (query) => target().exec(query),
    dump: () => target().dump(),
    withSession: (constraintOrBookmark) => binding.withSession(constraintOrBookmark),
  };
}

function cached(clients: WeakMap<D1Database, Db>, key: D1Database, build: () => Db): Db {
  let db = clients.get(key);
  if (!db) {
    db = build();
    clients.set(key, db);
  }
  return db;
}

export function getDb(env: Pick<Env, "DB">): Db {
  const d1 = env.DB;
  if (!(d1 instanceof RequestD1)) return cached(plainClients, d1, () => connect(d1));
  // A request's session outside the request's own context (never expected): a client of its own.
  if (currentRequestD1.getStore() !== d1) return connect(d1);
  return cached(sessionClients, d1.binding, () => connect(sessionRouter(d1.binding)));
}
