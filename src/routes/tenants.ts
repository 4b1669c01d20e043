import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../db/client";
import { notFound } from "../errors";
import { iso } from "../http/format";
import { requireGrant } from "../http/middleware/require-grant";
import { requireUser, signedInUser } from "../http/middleware/session";
import { errors, jsonBody, jsonRequest, TenantParams, Timestamp } from "../http/responses";
import { createRouter } from "../http/router";
import { assertMayCreateChild } from "../tenancy/tenant-access";
import type { TenantRow } from "../tenancy/tenants";
import { createTenant, updateTenant } from "../tenancy/tenants";

const Config = z.record(z.string(), z.unknown()).openapi({ example: { region: "eu" } });

export const TenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    slug: z.string(),
    domain: z.string(),
    parentId: z.string().nullable(),
    config: Config.optional(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Tenant");

const CreateTenantSchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    slug: z
      .string()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "lowercase letters, digits and inner hyphens, at most 63")
      .openapi({ example: "acme" }),
    parentId: z.string().min(1).max(128).nullable().optional(),
    config: Config.nullable().optional(),
  })
  .openapi("CreateTenant");

const UpdateTenantSchema = z
  .object({ name: z.string().trim().min(1).max(200).optional(), config: Config.nullable().optional() })
  .openapi("UpdateTenant");

export function formatTenant(row: TenantRow) {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    domain: row.domain,
    parentId: row.parentId,
    ...(row.config ? { config: row.config } : {}),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export const tenantRoutes = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants",
      tags: ["Tenants"],
      summary: "Create a tenant; the caller becomes its owner",
      description:
        "Creates the tenant with its system roles (owner, admin, member) and their grants, and makes the caller " +
        "an active owner. A child tenant (`parentId`) needs `tenant:<parentId>` manage in the parent.",
      middleware: [requireUser()] as const,
      request: jsonRequest(CreateTenantSchema),
      responses: { 201: jsonBody(TenantSchema, "The new tenant"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const user = signedInUser(c);
      const body = c.req.valid("json");
      const db = getDb(c.env);
      const parentId = body.parentId ?? null;
      if (parentId) await assertMayCreateChild(db, parentId, user.id);
      const created = await createTenant(db, { ...body, parentId, ownerUserId: user.id });
      return c.json(formatTenant(created.tenant), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}",
      tags: ["Tenants"],
      summary: "Get a tenant the caller belongs to",
      request: { params: TenantParams },
      responses: { 200: jsonBody(TenantSchema, "The tenant"), ...errors(401, 403, 404) },
    }),
    (c) => c.json(formatTenant(c.get("tenant")), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}",
      tags: ["Tenants"],
      summary: "Rename a tenant or replace its config",
      description: "Needs `tenant:<tenantId>` manage.",
      middleware: [requireGrant((c) => `tenant:${c.get("tenant").id}`, "manage")] as const,
      request: { params: TenantParams, ...jsonRequest(UpdateTenantSchema) },
      responses: { 200: jsonBody(TenantSchema, "The updated tenant"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const row = await updateTenant(getDb(c.env), c.get("tenant").id, c.req.valid("json"));
      if (!row) throw notFound("Tenant not found");
      return c.json(formatTenant(row), 200);
    },
  );
