import { createRoute, z } from "@hono/zod-openapi";
import {
  type GitTokenRow,
  getGitToken,
  gitTokenPrefixes,
  listPersonalTokens,
  listTenantTokens,
  type MintedGitToken,
  mintableActions,
  mintPersonalToken,
  mintTenantToken,
  revokeOwnToken,
  revokeTenantToken,
} from "../auth/git-tokens";
import { type Db, getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { gitTokenKinds } from "../db/schema";
import { type AuditScope, audit } from "../http/audit";
import { iso, isoOrNull } from "../http/format";
import { idResource, isAllowed, requireGrant } from "../http/middleware/require-grant";
import { requireUser, signedInUser } from "../http/middleware/session";
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
import { getUserPrincipalId } from "../tenancy/principals";

const RepoActionSchema = z.enum(["createPack", "resolveRef", "receivePack"]).openapi("RepoAction");

const ClaimsSchema = z
  .object({
    resource: z.string().openapi({ example: "asset:ast_0123456789abcdef0123456789abcdef" }),
    refPattern: z.string().openapi({ example: "refs/heads/**" }),
    actions: z.array(RepoActionSchema),
    expiresAt: Timestamp,
  })
  .openapi("GitTokenClaims");

const MintedSchema = z
  .object({
    id: z.string(),
    secret: z.string().openapi({
      description: `The token; shown only in this response. Starts with \`${gitTokenPrefixes.pat}\` or \`${gitTokenPrefixes.svc}\`.`,
    }),
    name: z.string(),
    kind: z.enum(gitTokenKinds),
    claims: ClaimsSchema,
  })
  .openapi("MintedGitToken");

const SummarySchema = z
  .object({
    id: z.string(),
    userId: z.string(),
    principalId: z.string().nullable(),
    tenantId: z.string().nullable(),
    name: z.string(),
    kind: z.enum(gitTokenKinds),
    resource: z.string(),
    refPattern: z.string(),
    actions: z.array(RepoActionSchema),
    expiresAt: Timestamp,
    revokedAt: Timestamp.nullable(),
    createdAt: Timestamp,
  })
  .openapi("GitTokenSummary");

function formatMinted({ row, secret }: MintedGitToken) {
  return {
    id: row.id,
    secret,
    name: row.name,
    kind: row.kind,
    claims: {
      resource: row.resource,
      refPattern: row.refPattern,
      actions: row.actions as z.infer<typeof RepoActionSchema>[],
      expiresAt: iso(row.expiresAt),
    },
  };
}

/** What an audit entry keeps of a token: its name and claims (the secret is never stored anywhere). */
function claimsOf(row: GitTokenRow) {
  const { name, kind, resource, refPattern, actions } = row;
  return { name, kind, resource, refPattern, actions, expiresAt: iso(row.expiresAt) };
}

/** A personal token is audited in the tenant it is bound to, as its user's principal there. */
async function scopeOf(db: Db, row: GitTokenRow | null): Promise<AuditScope | null> {
  if (!row?.tenantId) return null;
  const principalId = row.principalId ?? (await getUserPrincipalId(db, row.tenantId, row.userId));
  return { tenantId: row.tenantId, principalId };
}

function formatSummary(row: GitTokenRow) {
  return {
    id: row.id,
    userId: row.userId,
    principalId: row.principalId,
    tenantId: row.tenantId,
    name: row.name,
    kind: row.kind,
    resource: row.resource,
    refPattern: row.refPattern,
    actions: row.actions as z.infer<typeof RepoActionSchema>[],
    expiresAt: iso(row.expiresAt),
    revokedAt: isoOrNull(row.revokedAt),
    createdAt: iso(row.createdAt),
  };
}

// Only the shape is checked here; the domain answers with the specific codes (`invalid_action`,
// `invalid_ref_pattern`, `invalid_expires_at`, `invalid_resource`).
const MintTenantTokenSchema = z
  .object({
    name: z.string().trim().min(1).max(100).openapi({ example: "ci-deploy" }),
    resource: z.string().max(200).openapi({
      description: "The one repository the token opens: `asset:<id>` or `agent-state:<id>`",
      example: "asset:ast_0123456789abcdef0123456789abcdef",
    }),
    refPattern: z.string().max(256).openapi({
      description: "Glob over ref names: `*` within a segment, `**` across segments",
      example: "refs/heads/**",
    }),
    actions: z
      .array(z.enum(mintableActions))
      .max(10)
      .openapi({
        description: "`can_read` = createPack + resolveRef; `can_push` = receivePack",
        example: ["can_read"],
      }),
    expiresAt: z.string().max(64).openapi({
      format: "date-time",
      description: "At least 60 seconds in the future",
      example: "2027-01-01T00:00:00.000Z",
    }),
  })
  .openapi("MintGitToken");
const MintPersonalTokenSchema = MintTenantTokenSchema.extend({
  tenantId: z.string().max(128).optional().openapi({
    description: "Optional; when given it must be the repository's tenant",
  }),
}).openapi("MintPersonalGitToken");

const TokenIdParam = pathParam("tokenId", "gtk_0123456789abcdef0123456789abcdef");
const PersonalParams = z.object({ tokenId: TokenIdParam });
const TenantTokenParams = TenantParams.extend({ tokenId: TokenIdParam });
const mintDescription =
  "The secret is returned once, here, and only its SHA-256 is stored. The caller must hold the grants the " +
  "token's actions need on the repository (`read` for createPack/resolveRef, `write` for receivePack); they are " +
  "checked again on every use.";

export const gitTokenRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/me/git-tokens",
      tags: ["Git Tokens"],
      summary: "List my personal git tokens",
      description: "Revoked tokens included. Secrets and their hashes are never returned.",
      middleware: [requireUser()] as const,
      request: { query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(SummarySchema, "GitTokenPage"), "A page of personal git tokens"),
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const page = await listPersonalTokens(getDb(c.env), signedInUser(c).id, c.req.valid("query"));
      return c.json(mapPage(page, formatSummary), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/me/git-tokens",
      tags: ["Git Tokens"],
      summary: "Mint a personal git token",
      description:
        `${mintDescription} The token acts as the caller's principal in the repository's tenant. ` +
        "A repository the caller cannot see is a 404.",
      middleware: [requireUser()] as const,
      request: jsonRequest(MintPersonalTokenSchema),
      responses: { 201: jsonBody(MintedSchema, "The token and its secret"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const minted = await mintPersonalToken(getDb(c.env), signedInUser(c).id, c.req.valid("json"), {
        ip: c.req.header("cf-connecting-ip") ?? null,
      });
      const scope = await scopeOf(getDb(c.env), minted.row);
      if (scope)
        await audit(c, "git_token.create", { type: "git_token", id: minted.row.id }, claimsOf(minted.row), scope);
      return c.json(formatMinted(minted), 201);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/me/git-tokens/{tokenId}",
      tags: ["Git Tokens"],
      summary: "Revoke one of my git tokens",
      description: "Idempotent. Another user's token is a 403.",
      middleware: [requireUser()] as const,
      request: { params: PersonalParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const { tokenId } = c.req.valid("param");
      await revokeOwnToken(db, signedInUser(c).id, tokenId);
      const scope = await scopeOf(db, await getGitToken(db, tokenId));
      if (scope) await audit(c, "git_token.revoke", { type: "git_token", id: tokenId }, null, scope);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/git-tokens",
      tags: ["Git Tokens"],
      summary: "List the tenant's git tokens",
      description: "Needs `git-token:*` read. Service tokens and the members' personal tokens bound to this tenant.",
      middleware: [requireGrant("git-token:*", "read")] as const,
      request: { params: TenantParams, query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(SummarySchema, "TenantGitTokenPage"), "A page of git tokens"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const page = await listTenantTokens(getDb(c.env), c.get("tenant").id, c.req.valid("query"));
      return c.json(mapPage(page, formatSummary), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/git-tokens",
      tags: ["Git Tokens"],
      summary: "Mint a tenant (service) git token",
      description: `Needs \`git-token:*\` create. ${mintDescription} The token acts as the caller's principal.`,
      middleware: [requireGrant("git-token:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(MintTenantTokenSchema) },
      responses: { 201: jsonBody(MintedSchema, "The token and its secret"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const minted = await mintTenantToken(
        getDb(c.env),
        c.get("tenant").id,
        { userId: signedInUser(c).id, principalId: c.get("principal").id },
        c.req.valid("json"),
        (resource, verb) => isAllowed(c, resource, verb),
      );
      await audit(c, "git_token.create", { type: "git_token", id: minted.row.id }, claimsOf(minted.row));
      return c.json(formatMinted(minted), 201);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/git-tokens/{tokenId}",
      tags: ["Git Tokens"],
      summary: "Revoke a git token bound to the tenant",
      description: "Needs `git-token:<id>` manage. Idempotent. A token of another tenant is a 404.",
      middleware: [requireGrant(idResource("git-token", "tokenId"), "manage")] as const,
      request: { params: TenantTokenParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { tokenId } = c.req.valid("param");
      await revokeTenantToken(getDb(c.env), c.get("tenant").id, tokenId);
      await audit(c, "git_token.revoke", { type: "git_token", id: tokenId });
      return c.body(null, 204);
    },
  );
