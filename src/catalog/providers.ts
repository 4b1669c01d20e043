/**
 * Providers: service definitions (an LLM API, an OAuth identity provider) that credentials and OAuth
 * clients hang off. They are inherited down the tenant hierarchy: a tenant sees its own providers and its
 * ancestors'; a provider of the same name nearer to the tenant shadows the farther one.
 */
import { and, eq, lt, notExists, type SQL, sql } from "drizzle-orm";
import { alias, type SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { provider } from "../db/schema";
import { notFound } from "../errors";
import { newId } from "../lib/ids";

export type ProviderRow = typeof provider.$inferSelect;

/** How far up the hierarchy inheritance looks; the bound also stops a corrupted cycle. */
export const MAX_TENANT_DEPTH = 20;

/** The tenant and its ancestors, nearest first: `[tenantId, parent, grandparent, …]`. */
export async function tenantChain(db: Db, tenantId: string): Promise<string[]> {
  const rows = await db.all<{ id: string }>(sql`
    with recursive chain(id, parent_id, depth) as (
      select id, parent_id, 0 from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id, chain.depth + 1 from tenant t join chain on t.id = chain.parent_id
      where chain.depth < ${MAX_TENANT_DEPTH - 1}
    )
    select id from chain order by depth`);
  const seen = new Set<string>();
  return rows.map((r) => r.id).filter((id) => !seen.has(id) && seen.add(id));
}

// The chain is bound as one JSON parameter (read with json_each), never as one parameter per tenant:
// D1 caps bound parameters per statement at 100.

/** True when the tenant column's value is in the chain. */
export function inChain(column: SQLiteColumn, chain: string[]): SQL {
  return sql`${column} in (select value from json_each(${JSON.stringify(chain)}))`;
}

/** The position of a tenant column's value in the chain (0 = the tenant itself). */
export function chainDepth(column: SQLiteColumn, chain: string[]): SQL {
  return sql`(select key from json_each(${JSON.stringify(chain)}) where value = ${column})`;
}

/** Providers visible from the chain: in it, and not shadowed by a same-name provider nearer the tenant. */
export function visibleProviders(db: Db, chain: string[]): SQL | undefined {
  if (chain.length <= 1) return inChain(provider.tenantId, chain);
  const nearer = alias(provider, "nearer");
  return and(
    inChain(provider.tenantId, chain),
    notExists(
      db
        .select({ one: sql`1` })
        .from(nearer)
        .where(
          and(
            eq(nearer.name, provider.name),
            inChain(nearer.tenantId, chain),
            lt(chainDepth(nearer.tenantId, chain), chainDepth(provider.tenantId, chain)),
          ),
        ),
    ),
  );
}

export async function listProviders(db: Db, tenantId: string, options: { inherited: boolean; page: PageQuery }) {
  const where = options.inherited
    ? visibleProviders(db, await tenantChain(db, tenantId))
    : eq(provider.tenantId, tenantId);
  return paginate(
    options.page,
    { time: provider.createdAt, id: provider.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(provider)
        .where(and(where, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** A provider of the tenant or of one of its ancestors (shadowed or not: the id names it exactly). */
export async function findVisibleProvider(db: Db, tenantId: string, providerId: string): Promise<ProviderRow> {
  const chain = await tenantChain(db, tenantId);
  const [row] = await db
    .select()
    .from(provider)
    .where(and(eq(provider.id, providerId), inChain(provider.tenantId, chain)))
    .limit(1);
  if (!row) throw notFound("Provider not found");
  return row;
}

/** A provider owned by the tenant itself (only those can be changed or deleted there). */
export async function findOwnProvider(db: Db, tenantId: string, providerId: string): Promise<ProviderRow> {
  const [row] = await db
    .select()
    .from(provider)
    .where(and(eq(provider.id, providerId), eq(provider.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Provider not found");
  return row;
}

/** The provider a name means in a tenant: the nearest in the chain, or null. */
export async function resolveProviderByName(db: Db, chain: string[], name: string): Promise<ProviderRow | null> {
  if (chain.length === 0) return null;
  const rows = await db
    .select()
    .from(provider)
    .where(and(eq(provider.name, name), inChain(provider.tenantId, chain)))
    .orderBy(chainDepth(provider.tenantId, chain))
    .limit(1);
  return rows[0] ?? null;
}

export type ProviderInput = {
  name: string;
  plugin: string;
  authorizationUrl?: string | null | undefined;
  tokenUrl?: string | null | undefined;
  userInfoUrl?: string | null | undefined;
  scopes?: string[] | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
};

export async function createProvider(db: Db, tenantId: string, input: ProviderInput): Promise<ProviderRow> {
  const [row] = await db
    .insert(provider)
    .values({
      id: newId("provider"),
      tenantId,
      name: input.name,
      plugin: input.plugin,
      authorizationUrl: input.authorizationUrl ?? null,
      tokenUrl: input.tokenUrl ?? null,
      userInfoUrl: input.userInfoUrl ?? null,
      scopes: input.scopes ?? null,
      metadata: input.metadata ?? null,
    })
    .returning();
  if (!row) throw new Error("Provider insert returned no row");
  return row;
}

export async function updateProvider(
  db: Db,
  tenantId: string,
  providerId: string,
  patch: Partial<ProviderInput>,
): Promise<ProviderRow> {
  await findOwnProvider(db, tenantId, providerId);
  const values: Partial<typeof provider.$inferInsert> = { updatedAt: new Date() };
  for (const key of ["name", "plugin", "authorizationUrl", "tokenUrl", "userInfoUrl", "scopes", "metadata"] as const) {
    if (patch[key] !== undefined) Object.assign(values, { [key]: patch[key] });
  }
  const [row] = await db
    .update(provider)
    .set(values)
    .where(and(eq(provider.id, providerId), eq(provider.tenantId, tenantId)))
    .returning();
  if (!row) throw notFound("Provider not found");
  return row;
}

/** Deletes the provider; its OAuth clients and credentials (in this tenant and in descendants) go with it. */
export async function deleteProvider(db: Db, tenantId: string, providerId: string): Promise<void> {
  const deleted = await db
    .delete(provider)
    .where(and(eq(provider.id, providerId), eq(provider.tenantId, tenantId)))
    .returning({ id: provider.id });
  if (deleted.length === 0) throw notFound("Provider not found");
}
