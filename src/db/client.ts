import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

const connect = (d1: D1Database) => drizzle(d1, { schema });

export type Db = ReturnType<typeof connect>;

/**
 * Building a client walks the whole schema (about 100 µs and 20 KB of garbage), and an instance object
 * asks for one on every frame from its sidecar, so there is one client per D1 binding, and per API
 * request's D1 session (`env.DB` is then a `RequestD1`, `db/request-d1.ts`). The client itself holds no
 * state between queries.
 */
const clients = new WeakMap<D1Database, Db>();

export function getDb(env: Pick<Env, "DB">): Db {
  let db = clients.get(env.DB);
  if (!db) {
    db = connect(env.DB);
    clients.set(env.DB, db);
  }
  return db;
}
