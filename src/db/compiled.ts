/**
 * Batches whose SQL is built once per isolate and only bound per run. drizzle builds a statement's SQL on
 * every run, walking its whole expression tree; for the batch that authorizes every API request (the
 * caller, the tenant, the principal and its grants, with subqueries) that cost more CPU than the rest of the
 * request's own code. The statements take their per-run values as `sql.placeholder`s, and their rows come
 * back mapped by the selected columns, as drizzle maps them.
 */
import { Column, fillPlaceholders, is } from "drizzle-orm";
import type { Db } from "./client";

/** A single-table select of columns: D1 names each value by its column, so no two may share a name. */
type Select = PromiseLike<unknown> & {
  toSQL(): { sql: string; params: unknown[] };
  readonly _: { readonly selectedFields: unknown };
};

type Compiled = { sql: string; params: unknown[]; fields: [string, Column][] };

function compile(query: Select): Compiled {
  const { sql, params } = query.toSQL();
  const fields = Object.entries(query._.selectedFields as Record<string, unknown>).map(
    ([key, field]): [string, Column] => {
      if (!is(field, Column)) throw new Error(`compiled selects take columns only: ${key} is not one`);
      return [key, field];
    },
  );
  return { sql, params, fields };
}

function rowsOf(fields: [string, Column][], results: Record<string, unknown>[]): Record<string, unknown>[] {
  return results.map((raw) => {
    const row: Record<string, unknown> = {};
    for (const [key, column] of fields) {
      const value = raw[column.name];
      row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
    }
    return row;
  });
}

export type BatchRows<Q extends readonly Select[]> = { -readonly [K in keyof Q]: Awaited<Q[K]> };

/** A compiled batch: its statements bound with values, and its rows from D1's results. */
export type CompiledBatch<Q extends readonly Select[]> = {
  statements(db: Db, values: Record<string, unknown>): D1PreparedStatement[];
  rows(results: D1Result[]): BatchRows<Q>;
  run(db: Db, values: Record<string, unknown>): Promise<BatchRows<Q>>;
};

/**
 * A batch built by `build` on its first use (placeholders for the values that change), then bound with
 * `values` and sent as one D1 round trip on each run.
 */
export function compiledBatch<const Q extends readonly Select[]>(build: (db: Db) => Q): CompiledBatch<Q> {
  let compiled: Compiled[] | undefined;
  const statements = (db: Db, values: Record<string, unknown>) => {
    compiled ??= build(db).map(compile);
    const d1 = db.$client;
    return compiled.map(({ sql, params }) => d1.prepare(sql).bind(...fillPlaceholders(params, values)));
  };
  const rows = (results: D1Result[]) =>
    results.map((result, i) =>
      rowsOf(compiled?.[i]?.fields ?? [], result.results as Record<string, unknown>[]),
    ) as BatchRows<Q>;
  return {
    statements,
    rows,
    run: async (db, values) => rows(await db.$client.batch(statements(db, values))),
  };
}
