import { createRoute, z } from "@hono/zod-openapi";
import {
  createOAuthClient,
  deleteOAuthClient,
  findOAuthClient,
  listOAuthClients,
  type OAuthClientRow,
  updateOAuthClient,
} from "../catalog/oauth-clients";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
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
import { secretBox } from "../secrets/encryption";
import { Scopes } from "./providers";

export const OAuthClientSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    providerId: z.string(),
    name: z.string(),
    redirectUris: z.array(z.string()).nullable(),
    defaultScopes: z.array(z.string()).nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("OAuthClient", { description: "`clientId` and `clientSecret` are write-only and never returned" });

function formatOAuthClient(o: OAuthClientRow) {
  return {
    id: o.id,
    tenantId: o.tenantId,
    providerId: o.providerId,
    name: o.name,
    redirectUris: o.redirectUris ?? null,
    defaultScopes: o.defaultScopes ?? null,
    metadata: o.metadata ?? null,
    createdAt: iso(o.createdAt),
    updatedAt: iso(o.updatedAt),
  };
}

const Name = z.string().trim().min(1).max(100).openapi({ example: "GitHub app" });
const ClientId = z.string().min(1).max(512).openapi({ example: "Iv1.0123456789abcdef" });
const ClientSecret = z.string().min(1).max(4096).openapi({ description: "Write-only; encrypted at rest" });
const RedirectUris = z.array(z.url().max(2048)).max(20);
const Metadata = z.record(z.string(), z.unknown());

const CreateOAuthClientSchema = z
  .object({
    providerId: z.string().min(1).max(128),
    name: Name,
    clientId: ClientId,
    clientSecret: ClientSecret,
    redirectUris: RedirectUris.nullable().optional(),
    defaultScopes: Scopes.nullable().optional(),
    metadata: Metadata.nullable().optional(),
  })
  .openapi("CreateOAuthClient");
const UpdateOAuthClientSchema = z
  .object({
    name: Name.optional(),
    clientId: ClientId.optional(),
    clientSecret: ClientSecret.optional(),
    redirectUris: RedirectUris.nullable().optional(),
    defaultScopes: Scopes.nullable().optional(),
    metadata: Metadata.nullable().optional(),
  })
  .openapi("UpdateOAuthClient");
const OAuthClientParams = TenantParams.extend({
  oauthClientId: pathParam("oauthClientId", "ocl_0123456789abcdef0123456789abcdef"),
});
const oauthClientResource = idResource("oauth_client", "oauthClientId");

export const oauthClientRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/oauth-clients",
      tags: ["OAuth Clients"],
      summary: "List the tenant's OAuth clients",
      middleware: [requireGrant("oauth_client:*", "read")] as const,
      request: { params: TenantParams, query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(OAuthClientSchema, "OAuthClientPage"), "A page of OAuth clients"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const page = await listOAuthClients(getDb(c.env), c.get("tenant").id, c.req.valid("query"));
      return c.json(mapPage(page, formatOAuthClient), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/oauth-clients",
      tags: ["OAuth Clients"],
      summary: "Register an OAuth client with a provider",
      description:
        "Needs `oauth_client:*` create. The provider must be this tenant's or an ancestor's (404). One client " +
        "per provider and tenant (409). The client secret is encrypted at rest and never returned.",
      middleware: [requireGrant("oauth_client:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateOAuthClientSchema) },
      responses: { 201: jsonBody(OAuthClientSchema, "The new OAuth client"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const row = await createOAuthClient(getDb(c.env), secretBox(c.env), c.get("tenant").id, c.req.valid("json"));
      return c.json(formatOAuthClient(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/oauth-clients/{oauthClientId}",
      tags: ["OAuth Clients"],
      summary: "Get an OAuth client",
      middleware: [requireGrant(oauthClientResource, "read")] as const,
      request: { params: OAuthClientParams },
      responses: { 200: jsonBody(OAuthClientSchema, "The OAuth client"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findOAuthClient(getDb(c.env), c.get("tenant").id, c.req.valid("param").oauthClientId);
      return c.json(formatOAuthClient(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/oauth-clients/{oauthClientId}",
      tags: ["OAuth Clients"],
      summary: "Change an OAuth client, or rotate its secret",
      description: "Needs `oauth_client:<id>` manage. `null` clears a nullable field.",
      middleware: [requireGrant(oauthClientResource, "manage")] as const,
      request: { params: OAuthClientParams, ...jsonRequest(UpdateOAuthClientSchema) },
      responses: { 200: jsonBody(OAuthClientSchema, "The updated OAuth client"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { oauthClientId } = c.req.valid("param");
      const row = await updateOAuthClient(
        getDb(c.env),
        secretBox(c.env),
        c.get("tenant").id,
        oauthClientId,
        c.req.valid("json"),
      );
      return c.json(formatOAuthClient(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/oauth-clients/{oauthClientId}",
      tags: ["OAuth Clients"],
      summary: "Delete an OAuth client",
      description: "Needs `oauth_client:<id>` manage. Credentials that referenced it keep working without it.",
      middleware: [requireGrant(oauthClientResource, "manage")] as const,
      request: { params: OAuthClientParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      await deleteOAuthClient(getDb(c.env), c.get("tenant").id, c.req.valid("param").oauthClientId);
      return c.body(null, 204);
    },
  );
