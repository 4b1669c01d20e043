/**
 * Reads the local state `wrangler dev` keeps under its `--persist-to` directory (Miniflare's SQLite files),
 * for the few tests that must see what no API shows: a push lease while it is held, the pack files in R2.
 * One connection per call, so every read sees what the hub has committed; reads are read-only, and a write
 * is only for a hub that is down (nothing else has the database open).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

function objectFile(persistTo: string, kind: "d1" | "r2", objectClass: string): string {
  const dir = join(persistTo, "v3", kind, objectClass);
  const file = readdirSync(dir).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  if (!file) throw new Error(`no ${kind} database under ${dir}`);
  return join(dir, file);
}

function query<T>(file: string, sql: string, ...params: (string | number)[]): T[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Rows of the hub's D1 database. */
export function d1Rows<T>(persistTo: string, sql: string, ...params: (string | number)[]): T[] {
  return query<T>(objectFile(persistTo, "d1", "miniflare-D1DatabaseObject"), sql, ...params);
}

/** The keys of the objects in the hub's R2 bucket under `prefix`. */
export function r2Keys(persistTo: string, prefix: string): string[] {
  const file = objectFile(persistTo, "r2", "miniflare-R2BucketObject");
  return query<{ key: string }>(file, "select key from _mf_objects where key like ? order by key", `${prefix}%`).map(
    (r) => r.key,
  );
}

/** Writes to the D1 database of a hub that is not running. */
export function writeD1(persistTo: string, sql: string, ...params: (string | number)[]): void {
  const db = new DatabaseSync(objectFile(persistTo, "d1", "miniflare-D1DatabaseObject"));
  try {
    // A killed hub's runtime can hold the file for a moment after the kill: wait for it, not fail.
    db.exec("PRAGMA busy_timeout = 15000");
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}
