/**
 * Offerings: what an agent definition offers, at what price. Search spans this tenant and the tenants
 * that expose themselves to it through federation (see `federation.ts`); each result carries its tenant.
 */
import { and, desc, eq, lt, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type Cursor, type Page, type PageQuery, paginate } from "../db/pagination";
import { agent, offering } from "../db/schema";
import { notFound } from "../errors";
import { compareDecimal } from "../lib/decimal";
import { newId } from "../lib/ids";
import { visibleTenantCondition } from "./federation";

export type OfferingRow = typeof offering.$inferSelect;
export type OfferingPricing = NonNullable<OfferingRow["pricing"]>;
export type OfferingView = OfferingRow & { agentName: string };

export type OfferingSearch = {
  name?: string | undefined;
  /** Inclusive bounds on `pricing.base.amount`, compared exactly; offerings without a base price never match. */
  minPrice?: string | undefined;
  maxPrice?: string | undefined;
  /** Exact match on `pricing.base.currency`. */
  currency?: string | undefined;
  /** One of `pricing.methods`. */
  paymentMethod?: string | undefined;
  /** Include offerings of tenants that trust this one (default true). */
  federated?: boolean | undefined;
};

/** Rows fetched per round when a filter has to be applied in code (exact decimal comparison). */
const SCAN_BATCH = 200;

const selection = { offering, agentName: agent.name };

function toView(row: { offering: OfferingRow; agentName: string | null }): OfferingView {
  return { ...row.offering, agentName: row.agentName ?? row.offering.agentId };
}

function baseQuery(db: Db) {
  return db.select(selection).from(offering).leftJoin(agent, eq(agent.id, offering.agentId));
}

const cursorOf = (row: OfferingView): Cursor => ({ t: row.createdAt.getTime(), id: row.id });

function after(c: Cursor): SQL | undefined {
  const t = new Date(c.t);
  return or(lt(offering.createdAt, t), and(eq(offering.createdAt, t), lt(offering.id, c.id)));
}

function priceMatches(pricing: OfferingRow["pricing"], min: string | undefined, max: string | undefined): boolean {
  const amount = pricing?.base?.amount;
  if (typeof amount !== "string") return false;
  try {
    if (min !== undefined && compareDecimal(amount, min) < 0) return false;
    if (max !== undefined && compareDecimal(amount, max) > 0) return false;
  } catch {
    // A stored amount that is not a decimal (written before validation existed) matches no price filter.
    return false;
  }
  return true;
}

export async function searchOfferings(
  db: Db,
  tenantId: string,
  search: OfferingSearch,
  page: PageQuery,
): Promise<Page<OfferingView>> {
  const filters: (SQL | undefined)[] = [
    search.federated === false
      ? eq(offering.tenantId, tenantId)
      : visibleTenantCondition(db, offering.tenantId, tenantId),
  ];
  if (search.name) filters.push(sql`instr(lower(${offering.name}), lower(${search.name})) > 0`);
  if (search.currency) filters.push(sql`json_extract(${offering.pricing}, '$.base.currency') = ${search.currency}`);
  if (search.paymentMethod) {
    filters.push(
      sql`exists (select 1 from json_each(${offering.pricing}, '$.methods') as m where m.value = ${search.paymentMethod})`,
    );
  }
  const byPrice = search.minPrice !== undefined || search.maxPrice !== undefined;
  if (byPrice) filters.push(sql`json_extract(${offering.pricing}, '$.base.amount') is not null`);
  const where = and(...filters);

  return paginate(
    page,
    { time: offering.createdAt, id: offering.id },
    async (keyset, orderBy, limit) => {
      if (!byPrice) {
        const rows = await baseQuery(db)
          .where(and(where, keyset))
          .orderBy(...orderBy)
          .limit(limit);
        return rows.map(toView);
      }
      // Decimal strings do not compare correctly in SQL, so scan in keyset order and filter exactly here.
      const out: OfferingView[] = [];
      let position = keyset;
      for (;;) {
        const rows = (
          await baseQuery(db)
            .where(and(where, position))
            .orderBy(desc(offering.createdAt), desc(offering.id))
            .limit(SCAN_BATCH)
        ).map(toView);
        for (const row of rows) {
          if (priceMatches(row.pricing, search.minPrice, search.maxPrice)) out.push(row);
          if (out.length === limit) return out;
        }
        const last = rows[rows.length - 1];
        if (rows.length < SCAN_BATCH || !last) return out;
        position = after(cursorOf(last));
      }
    },
    cursorOf,
  );
}

/** An offering of this tenant (for changes). */
export async function findOffering(db: Db, tenantId: string, offeringId: string): Promise<OfferingView> {
  const [row] = await baseQuery(db)
    .where(and(eq(offering.id, offeringId), eq(offering.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Offering not found");
  return toView(row);
}

/** An offering this tenant can see: its own, or one of a tenant that trusts it. */
export async function findVisibleOffering(db: Db, tenantId: string, offeringId: string): Promise<OfferingView> {
  const [row] = await baseQuery(db)
    .where(and(eq(offering.id, offeringId), visibleTenantCondition(db, offering.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Offering not found");
  return toView(row);
}

export type CreateOfferingInput = {
  agentId: string;
  name: string;
  description?: string | null | undefined;
  pricing?: OfferingPricing | null | undefined;
  schema?: Record<string, unknown> | null | undefined;
};

export async function createOffering(db: Db, tenantId: string, input: CreateOfferingInput): Promise<OfferingView> {
  const [owner] = await db
    .select({ id: agent.id, name: agent.name })
    .from(agent)
    .where(and(eq(agent.id, input.agentId), eq(agent.tenantId, tenantId)))
    .limit(1);
  if (!owner) throw notFound("Agent not found in this tenant");
  const [row] = await db
    .insert(offering)
    .values({
      id: newId("offering"),
      agentId: owner.id,
      tenantId,
      name: input.name,
      description: input.description ?? null,
      pricing: input.pricing ?? null,
      schema: input.schema ?? null,
    })
    .returning();
  if (!row) throw new Error("Offering insert returned no row");
  return { ...row, agentName: owner.name };
}

export type UpdateOfferingInput = {
  name?: string | undefined;
  description?: string | null | undefined;
  pricing?: OfferingPricing | null | undefined;
  schema?: Record<string, unknown> | null | undefined;
};

export async function updateOffering(
  db: Db,
  tenantId: string,
  offeringId: string,
  patch: UpdateOfferingInput,
): Promise<OfferingView> {
  const current = await findOffering(db, tenantId, offeringId);
  const values: Partial<typeof offering.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.description !== undefined) values.description = patch.description;
  if (patch.pricing !== undefined) values.pricing = patch.pricing;
  if (patch.schema !== undefined) values.schema = patch.schema;
  const [row] = await db
    .update(offering)
    .set(values)
    .where(and(eq(offering.id, offeringId), eq(offering.tenantId, tenantId)))
    .returning();
  if (!row) throw notFound("Offering not found");
  return { ...row, agentName: current.agentName };
}

export async function deleteOffering(db: Db, tenantId: string, offeringId: string): Promise<void> {
  const deleted = await db
    .delete(offering)
    .where(and(eq(offering.id, offeringId), eq(offering.tenantId, tenantId)))
    .returning({ id: offering.id });
  if (deleted.length === 0) throw notFound("Offering not found");
}

/** An agent definition's offerings, oldest first. */
export async function listAgentOfferings(db: Db, tenantId: string, agentId: string): Promise<OfferingRow[]> {
  return db
    .select()
    .from(offering)
    .where(and(eq(offering.agentId, agentId), eq(offering.tenantId, tenantId)))
    .orderBy(offering.createdAt, offering.id);
}
