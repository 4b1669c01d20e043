/**
 * The one pagination helper: keyset pagination over (created_at DESC, id DESC).
 *
 * The cursor is base64url(JSON {t: <ms>, id}) of the last row of the page. The query fetches limit+1
 * rows so that `nextCursor` is null exactly when no further row exists. A cursor that does not decode
 * is a 400 `invalid_cursor`, never silently the first page.
 */
import { and, desc, eq, lt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { badRequest } from "../errors";
import { base64ToBytes, bytesToBase64Url } from "../lib/base64";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

/** A page request, validated by `PageQuerySchema` (`responses.ts`). */
export type PageQuery = { limit: number; cursor?: string | undefined };

export type Page<T> = { data: T[]; nextCursor: string | null };
export type Cursor = { t: number; id: string };

export function encodeCursor(cursor: Cursor): string {
  return bytesToBase64Url(new TextEncoder().encode(JSON.stringify({ t: cursor.t, id: cursor.id })));
}

export function decodeCursor(raw: string): Cursor {
  const invalid = badRequest("The cursor is not one this API issued", "invalid_cursor");
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64ToBytes(raw)));
  } catch {
    throw invalid;
  }
  if (typeof parsed !== "object" || parsed === null) throw invalid;
  const { t, id } = parsed as Record<string, unknown>;
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) throw invalid;
  if (typeof id !== "string" || id.length === 0 || id.length > 128) throw invalid;
  return { t, id };
}

type KeysetColumns = { time: SQLiteColumn; id: SQLiteColumn };

/**
 * Runs one page of a keyset query. `fetch` receives the keyset condition (to AND into its own filters),
 * the ordering and the row count to ask for; `key` extracts a row's (time, id).
 */
export async function paginate<T>(
  query: PageQuery,
  columns: KeysetColumns,
  fetch: (keyset: SQL | undefined, orderBy: SQL[], limit: number) => Promise<T[]>,
  key: (row: T) => Cursor,
): Promise<Page<T>> {
  const limit = query.limit;
  const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
  const keyset = after
    ? or(lt(columns.time, new Date(after.t)), and(eq(columns.time, new Date(after.t)), lt(columns.id, after.id)))
    : undefined;
  const rows = await fetch(keyset, [desc(columns.time), desc(columns.id)], limit + 1);
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  const last = data[data.length - 1];
  return { data, nextCursor: hasMore && last ? encodeCursor(key(last)) : null };
}

/** Applies `map` to the items of a page. */
export function mapPage<T, U>(page: Page<T>, map: (row: T) => U): Page<U> {
  return { data: page.data.map(map), nextCursor: page.nextCursor };
}
