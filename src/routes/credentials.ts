import { createRoute, z } from "@hono/zod-openapi";
import {
  type CredentialRow,
  createCredential,
  deleteCredential,
  findVisibleCredential,
  listCredentials,
  resolveCredentialByName,
  updateCredential,
} from "../catalog/credentials";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { credentialStatuses, credentialTypes } from "../db/schema";
import { forbidden } from "../errors";
import { audit, fieldsOf } from "../http/audit";
import { iso, isoOrNull } from "../http/format";
import { idResource, isAllowed, requireGrant } from "../http/middleware/require-grant";
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
import { pushCredentialChange } from "../runtime/credential-updates";
import { secretBox } from "../secrets/encryption";
import { Scopes } from "./providers";

export const CredentialSchema = z
  .object({
    id: z.string(),
    tenantId: z.string().openapi({ description: "The owning tenant: this one or an ancestor" }),
    providerId: z.string(),
    principalId: z.string().nullable().openapi({ description: "Null: owned by the tenant" }),
    oauthClientId: z.string().nullable(),
    name: z.string(),
    type: z.enum(credentialTypes),
    description: z.string().nullable(),
    scopes: z.array(z.string()).nullable(),
    expiresAt: Timestamp.nullable(),
    status: z.enum(credentialStatuses),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Credential", { description: "`secret` and `refreshSecret` are write-only and never returned" });

function formatCredential(r: CredentialRow) {
  return {
    id: r.id,
    tenantId: r.tenantId,
    providerId: r.providerId,
    principalId: r.principalId,
    oauthClientId: r.oauthClientId,
    name: r.name,
    type: r.type,
    description: r.description,
    scopes: r.scopes ?? null,
    expiresAt: isoOrNull(r.expiresAt),
    status: r.status,
    metadata: r.metadata ?? null,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}

const Name = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[^/\s]+$/, "no spaces or slashes")
  .openapi({ example: "openai-prod" });
const Secret = z.string().min(1).max(16_384).openapi({ description: "Write-only; encrypted at rest" });
const Description = z.string().max(1000).nullable();
const IsoDateTime = z.iso.datetime({ offset: true }).openapi({ example: "2027-01-01T00:00:00.000Z" });
const Metadata = z.record(z.string(), z.unknown());
const toDate = (value: string | null | undefined) =>
  value === undefined ? undefined : value === null ? null : new Date(value);

const CreateCredentialSchema = z
  .object({
    providerId: z.string().min(1).max(128),
    name: Name,
    type: z.enum(credentialTypes),
    principalId: z
      .string()
      .min(1)
      .max(128)
      .nullable()
      .optional()
      .openapi({ description: "Owner principal; omitted or null: owned by the tenant" }),
    oauthClientId: z.string().min(1).max(128).nullable().optional(),
    description: Description.optional(),
    secret: Secret,
    refreshSecret: Secret.nullable().optional(),
    scopes: Scopes.nullable().optional(),
    expiresAt: IsoDateTime.nullable().optional(),
    metadata: Metadata.nullable().optional(),
  })
  .openapi("CreateCredential");
/** An audit entry names the fields a request set and says whether a secret changed, never its value. */
function credentialChanges(body: object) {
  const fields = ["providerId", "name", "type", "principalId", "oauthClientId", "description", "scopes"];
  const changes = fieldsOf(body, [...fields, "expiresAt", "status"]) ?? {};
  if ("secret" in body && body.secret !== undefined) changes.secret = "changed";
  if ("refreshSecret" in body && body.refreshSecret !== undefined) {
    changes.refreshSecret = body.refreshSecret === null ? "removed" : "changed";
  }
  if ("metadata" in body && body.metadata !== undefined) changes.metadata = "changed";
  return Object.keys(changes).length > 0 ? changes : null;
}

const UpdateCredentialSchema = z
  .object({
    name: Name.optional(),
    description: Description.optional(),
    secret: Secret.optional(),
    refreshSecret: Secret.nullable().optional(),
    scopes: Scopes.nullable().optional(),
    expiresAt: IsoDateTime.nullable().optional(),
    status: z.enum(credentialStatuses).optional(),
    metadata: Metadata.nullable().optional(),
  })
  .openapi("UpdateCredential");
const ListQuery = PageQuerySchema.extend({
  owner: z
    .enum(["me", "org", "all"])
    .default("all")
    .openapi({ description: "`me`: the caller's own; `org`: the tenant's; `all`: every credential" }),
});
const CredentialParams = TenantParams.extend({
  credentialId: pathParam("credentialId", "crd_0123456789abcdef0123456789abcdef"),
});
const NameParams = TenantParams.extend({ name: pathParam("name", "openai-prod") });
const credentialResource = idResource("credential", "credentialId");

export const credentialRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/credentials",
      tags: ["Credentials"],
      summary: "List the tenant's credentials (metadata only)",
      middleware: [requireGrant("credential:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(CredentialSchema, "CredentialPage"), "A page of credentials"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { owner, ...page } = c.req.valid("query");
      const result = await listCredentials(
        getDb(c.env),
        c.get("tenant").id,
        { owner, callerPrincipalId: c.get("principal").id },
        page,
      );
      return c.json(mapPage(result, formatCredential), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/credentials",
      tags: ["Credentials"],
      summary: "Store a credential",
      description:
        "Needs `credential:*` create; owning it by a principal other than the caller also needs " +
        "`credential:*` manage. The provider must be this tenant's or an ancestor's (404), the principal and " +
        "the OAuth client this tenant's (404; the client for the same provider, else 400). Names are unique " +
        "in a tenant (409). Secrets are encrypted at rest and never returned.",
      middleware: [requireGrant("credential:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateCredentialSchema) },
      responses: { 201: jsonBody(CredentialSchema, "The new credential"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      if (body.principalId && body.principalId !== c.get("principal").id && !isAllowed(c, "credential:*", "manage")) {
        throw forbidden("Storing a credential for another principal needs credential:* manage");
      }
      const row = await createCredential(getDb(c.env), secretBox(c.env), c.get("tenant").id, {
        ...body,
        expiresAt: toDate(body.expiresAt),
      });
      await audit(c, "credential.create", { type: "credential", id: row.id }, credentialChanges(body));
      return c.json(formatCredential(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/credentials/resolve/{name}",
      tags: ["Credentials"],
      summary: "Find a credential by name, nearest tenant first",
      description:
        "Needs `credential:*` read. Looks in this tenant, then its parent, and so on; the nearest credential " +
        "with that name wins. Metadata only.",
      middleware: [requireGrant("credential:*", "read")] as const,
      request: { params: NameParams },
      responses: { 200: jsonBody(CredentialSchema, "The credential"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await resolveCredentialByName(getDb(c.env), c.get("tenant").id, c.req.valid("param").name);
      return c.json(formatCredential(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/credentials/{credentialId}",
      tags: ["Credentials"],
      summary: "Get a credential of this tenant or an ancestor (metadata only)",
      middleware: [requireGrant(credentialResource, "read")] as const,
      request: { params: CredentialParams },
      responses: { 200: jsonBody(CredentialSchema, "The credential"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findVisibleCredential(getDb(c.env), c.get("tenant").id, c.req.valid("param").credentialId);
      return c.json(formatCredential(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/credentials/{credentialId}",
      tags: ["Credentials"],
      summary: "Change a credential, rotate its secret, revoke it",
      description:
        "Needs `credential:<id>` manage. Only the tenant's own credentials (an ancestor's is a 404 here). " +
        "`status` other than `active`, or an `expiresAt` in the past, takes it out of credential resolution. " +
        "`refreshSecret: null` removes the refresh secret.",
      middleware: [requireGrant(credentialResource, "manage")] as const,
      request: { params: CredentialParams, ...jsonRequest(UpdateCredentialSchema) },
      responses: { 200: jsonBody(CredentialSchema, "The updated credential"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const db = getDb(c.env);
      const row = await updateCredential(db, secretBox(c.env), c.get("tenant").id, c.req.valid("param").credentialId, {
        ...body,
        expiresAt: toDate(body.expiresAt),
      });
      await audit(c, "credential.update", { type: "credential", id: row.id }, credentialChanges(body));
      await pushCredentialChange(c.env, db, row);
      return c.json(formatCredential(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/credentials/{credentialId}",
      tags: ["Credentials"],
      summary: "Delete a credential",
      description: "Needs `credential:<id>` manage. Only the tenant's own credentials.",
      middleware: [requireGrant(credentialResource, "manage")] as const,
      request: { params: CredentialParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const { credentialId } = c.req.valid("param");
      await deleteCredential(db, tenantId, credentialId);
      await audit(c, "credential.delete", { type: "credential", id: credentialId });
      await pushCredentialChange(c.env, db, { id: credentialId, tenantId });
      return c.body(null, 204);
    },
  );
