/**
 * Keyset pagination on real D1 through HTTP: a probe list route over the tenant table uses the shared
 * pagination helper and query schema exactly as resource routes do.
 */

import { env } from "cloudflare:workers";
import { createRoute, z } from "@hono/zod-openapi";
import { and, like } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { getDb } from "../../src/db/client";
import { paginate } from "../../src/db/pagination";
import { tenant } from "../../src/db/schema";
import { PageQuerySchema, pageOf } from "../../src/http/responses";
import { newId } from "../../src/lib/ids";

const Item = z.object({ id: z.string(), name: z.string() });

function appWithList() {
  const app = createApp();
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/probe/tenants",
      request: { query: PageQuerySchema.extend({ prefix: z.string() }) },
      responses: {
        200: { description: "page", content: { "application/json": { schema: pageOf(Item, "ProbePage") } } },
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const db = getDb(c.env);
      const page = await paginate(
        query,
        { time: tenant.createdAt, id: tenant.id },
        (keyset, orderBy, limit) =>
          db
            .select()
            .from(tenant)
            .where(and(like(tenant.name, `${query.prefix}%`), keyset))
            .orderBy(...orderBy)
            .limit(limit),
        (row) => ({ t: row.createdAt.getTime(), id: row.id }),
      );
      return c.json({ data: page.data.map((r) => ({ id: r.id, name: r.name })), nextCursor: page.nextCursor }, 200);
    },
  );
  return app;
}

let app: ReturnType<typeof appWithList>;
beforeAll(() => {
  app = appWithList();
});

/** Inserts `count` tenants; groups of 7 share one millisecond so ties are broken by id. */
async function insertTenants(count: number) {
  const prefix = `p${crypto.randomUUID().slice(0, 8)}-`;
  const base = Date.UTC(2026, 0, 1);
  const rows = Array.from({ length: count }, (_, i) => {
    const id = newId("tenant");
    return {
      id,
      name: `${prefix}${i}`,
      slug: id,
      domain: `${id}.localhost`,
      createdAt: new Date(base + Math.floor(i / 7)),
    };
  });
  const db = getDb(env);
  for (let i = 0; i < rows.length; i += 10) await db.insert(tenant).values(rows.slice(i, i + 10));
  return { prefix, ids: rows.map((r) => r.id) };
}

async function walk(prefix: string, limit: number) {
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const qs = new URLSearchParams({ prefix, limit: String(limit) });
    if (cursor) qs.set("cursor", cursor);
    const res = await app.request(`/api/probe/tenants?${qs}`, {}, env);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { id: string }[]; nextCursor: string | null };
    expect(body.data.length).toBeLessThanOrEqual(limit);
    if (body.nextCursor) expect(body.data.length).toBe(limit);
    seen.push(...body.data.map((d) => d.id));
    cursor = body.nextCursor;
    pages++;
  } while (cursor && pages < 1000);
  return { seen, pages };
}

describe("cursor pagination", () => {
  it("walks more rows than one page with no duplicate and no gap", async () => {
    const { prefix, ids } = await insertTenants(123);
    const { seen, pages } = await walk(prefix, 10);
    expect(pages).toBe(13);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...ids].sort());
  });

  it("orders newest first, ties broken by id descending", async () => {
    const { prefix, ids } = await insertTenants(21);
    const { seen } = await walk(prefix, 4);
    const byTime = ids.map((id, i) => ({ id, t: Math.floor(i / 7) }));
    byTime.sort((a, b) => b.t - a.t || (a.id < b.id ? 1 : -1));
    expect(seen).toEqual(byTime.map((r) => r.id));
  });

  it("returns nextCursor null on a final page that is exactly full", async () => {
    const { prefix } = await insertTenants(20);
    const { seen, pages } = await walk(prefix, 10);
    expect(seen).toHaveLength(20);
    expect(pages).toBe(2);
  });

  it("rejects a malformed cursor with 400 invalid_cursor instead of serving page one", async () => {
    const { prefix } = await insertTenants(3);
    for (const cursor of ["garbage!", "eyJ0IjoiYSJ9", "bm90IGpzb24"]) {
      const res = await app.request(`/api/probe/tenants?prefix=${prefix}&cursor=${cursor}`, {}, env);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; requestId: string } };
      expect(body.error.code).toBe("invalid_cursor");
      expect(body.error.requestId).toBeTruthy();
    }
  });

  it.each(["0", "101", "abc", "2.5", "-1"])("rejects limit=%s with 400 validation_failed", async (limit) => {
    const res = await app.request(`/api/probe/tenants?prefix=x&limit=${limit}`, {}, env);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { issues: { path: string }[] } } };
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.details.issues[0]?.path).toBe("limit");
  });
});
