import { createRoute, z } from "@hono/zod-openapi";
import { ProviderMetadataSchema } from "../catalog/models";
import {
  createProvider,
  deleteProvider,
  findVisibleProvider,
  listProviders,
  type ProviderRow,
  updateProvider,
} from "../catalog/providers";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { audit, fieldsOf } from "../http/audit";
import { iso } from "../http/format";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import {
  errors,
  jsonBody,
  jsonRequest,
  noContent,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";

export const ProviderSchema = z
  .object({
    id: z.string(),
    tenantId: z.string().openapi({ description: "The owning tenant: this one or an ancestor" }),
    name: z.string(),
    plugin: z.string(),
    authorizationUrl: z.string().nullable(),
    tokenUrl: z.string().nullable(),
    userInfoUrl: z.string().nullable(),
    scopes: z.array(z.string()).nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Provider");

function formatProvider(p: ProviderRow) {
  return {
    id: p.id,
    tenantId: p.tenantId,
    name: p.name,
    plugin: p.plugin,
    authorizationUrl: p.authorizationUrl,
    tokenUrl: p.tokenUrl,
    userInfoUrl: p.userInfoUrl,
    scopes: p.scopes ?? null,
    metadata: p.metadata ?? null,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

const Name = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
  .openapi({ example: "openai" });
const Plugin = z.string().trim().min(1).max(100).openapi({ example: "openai" });
const Url = z.url({ protocol: /^https?$/ }).max(2048);
export const Scopes = z.array(z.string().trim().min(1).max(200)).max(100);

const CreateProviderSchema = z
  .object({
    name: Name,
    plugin: Plugin,
    authorizationUrl: Url.nullable().optional(),
    tokenUrl: Url.nullable().optional(),
    userInfoUrl: Url.nullable().optional(),
    scopes: Scopes.nullable().optional(),
    metadata: ProviderMetadataSchema.nullable().optional(),
  })
  .openapi("CreateProvider");
const UpdateProviderSchema = z
  .object({
    name: Name.optional(),
    plugin: Plugin.optional(),
    authorizationUrl: Url.nullable().optional(),
    tokenUrl: Url.nullable().optional(),
    userInfoUrl: Url.nullable().optional(),
    scopes: Scopes.nullable().optional(),
    metadata: ProviderMetadataSchema.nullable().optional(),
  })
  .openapi("UpdateProvider");
const ListQuery = PageQuerySchema.extend({
  inherited: z
    .enum(["true", "false"])
    .default("true")
    .openapi({ description: "`false`: only this tenant's own providers" }),
});
const ProviderParams = TenantParams.extend({
  providerId: pathParam("providerId", "prv_0123456789abcdef0123456789abcdef"),
});
/** What an audit entry keeps of a provider (metadata is configuration, kept out of the summary). */
const providerFields = ["name", "plugin", "authorizationUrl", "tokenUrl", "userInfoUrl", "scopes"] as const;
const providerResource = idResource("provider", "providerId");

export const providerRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/providers",
      tags: ["Providers"],
      summary: "List providers, inherited ones included",
      description:
        "Needs `provider:*` read. By default the tenant's own providers and its ancestors'; a provider " +
        "nearer the tenant shadows an ancestor's of the same name, so each name appears once. " +
        "`inherited=false` lists only the tenant's own. Paginated either way.",
      middleware: [requireGrant("provider:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(ProviderSchema, "ProviderPage"), "A page of providers"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { inherited, ...page } = c.req.valid("query");
      const result = await listProviders(getDb(c.env), c.get("tenant").id, { inherited: inherited === "true", page });
      return c.json(mapPage(result, formatProvider), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/providers",
      tags: ["Providers"],
      summary: "Create a provider",
      description:
        "Needs `provider:*` create. Names are unique in a tenant (409); a name an ancestor uses is allowed and " +
        "shadows it here and in descendants. `metadata.baseURL` is needed to use the provider for inference; " +
        "`metadata.models` feeds `GET /api/models`.",
      middleware: [requireGrant("provider:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateProviderSchema) },
      responses: { 201: jsonBody(ProviderSchema, "The new provider"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const row = await createProvider(getDb(c.env), c.get("tenant").id, body);
      await audit(c, "provider.create", { type: "provider", id: row.id }, fieldsOf(body, providerFields));
      return c.json(formatProvider(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/providers/{providerId}",
      tags: ["Providers"],
      summary: "Get a provider of this tenant or an ancestor",
      middleware: [requireGrant(providerResource, "read")] as const,
      request: { params: ProviderParams },
      responses: { 200: jsonBody(ProviderSchema, "The provider"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findVisibleProvider(getDb(c.env), c.get("tenant").id, c.req.valid("param").providerId);
      return c.json(formatProvider(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/providers/{providerId}",
      tags: ["Providers"],
      summary: "Change a provider",
      description:
        "Needs `provider:<id>` manage. Only the tenant's own providers (an ancestor's is a 404 here). " +
        "Renaming onto a taken name is a 409; `null` clears a nullable field.",
      middleware: [requireGrant(providerResource, "manage")] as const,
      request: { params: ProviderParams, ...jsonRequest(UpdateProviderSchema) },
      responses: { 200: jsonBody(ProviderSchema, "The updated provider"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { providerId } = c.req.valid("param");
      const body = c.req.valid("json");
      const row = await updateProvider(getDb(c.env), c.get("tenant").id, providerId, body);
      await audit(c, "provider.update", { type: "provider", id: providerId }, fieldsOf(body, providerFields));
      return c.json(formatProvider(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/providers/{providerId}",
      tags: ["Providers"],
      summary: "Delete a provider",
      description:
        "Needs `provider:<id>` manage. Only the tenant's own providers. Its OAuth clients and credentials go " +
        "with it, including those that descendant tenants registered against it.",
      middleware: [requireGrant(providerResource, "manage")] as const,
      request: { params: ProviderParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { providerId } = c.req.valid("param");
      await deleteProvider(getDb(c.env), c.get("tenant").id, providerId);
      await audit(c, "provider.delete", { type: "provider", id: providerId });
      return c.body(null, 204);
    },
  );
