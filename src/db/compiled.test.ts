import { env } from "cloudflare:test";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { newId } from "../lib/ids";
import { getDb, runInRequestD1 } from "./client";
import { compiledBatch } from "./compiled";
import { RequestD1 } from "./request-d1";
import { grant, tenant } from "./schema";

const ID = sql.placeholder("id");
const batch = compiledBatch((db) => [
  db.select().from(tenant).where(eq(tenant.id, ID)),
  db
    .select({ tenantId: grant.tenantId, expires: grant.expiresAt, conditions: grant.conditions })
    .from(grant)
    .where(eq(grant.tenantId, ID)),
]);

describe("compiledBatch", () => {
  it("returns the rows drizzle returns for the same selects, mapped by column", async () => {
    const db = getDb(env);
    const id = newId("tenant");
    await db
      .insert(tenant)
      .values({ id, name: "Compiled", slug: `compiled-${id}`, domain: `${id}.example`, config: { a: [1, "b"] } });
    await db.insert(grant).values({
      id: newId("grant"),
      tenantId: id,
      resource: "tenant:*",
      action: "read",
      effect: "allow",
      conditions: { ip: ["10.0.0.0/8"] },
      origin: "creator",
      expiresAt: new Date(1_900_000_000_000),
    });
    const [tenants, grants] = await batch.run(db, { id });
    expect(tenants).toEqual(await db.select().from(tenant).where(eq(tenant.id, id)));
    expect(tenants[0]?.config).toEqual({ a: [1, "b"] });
    expect(tenants[0]?.createdAt).toBeInstanceOf(Date);
    expect(grants).toEqual([
      { tenantId: id, expires: new Date(1_900_000_000_000), conditions: { ip: ["10.0.0.0/8"] } },
    ]);
    // The same compiled statements, bound with other values.
    expect(await batch.run(db, { id: "tnt_missing" })).toEqual([[], []]);
  });

  it("runs in the D1 session of the request it is called in", async () => {
    const session = new RequestD1(env.DB, "first-primary");
    const db = await runInRequestD1(session, () => getDb({ DB: session }));
    expect(session.binding).toBe(env.DB);
    await runInRequestD1(session, async () => {
      expect(getDb({ DB: session })).toBe(db);
      await batch.run(getDb({ DB: session }), { id: "tnt_missing" });
    });
    // Its bookmark moved: the statements went through the session.
    expect(await session.bookmark(false)).toMatch(/^[0-9a-f]{8}-/);
  });
});
