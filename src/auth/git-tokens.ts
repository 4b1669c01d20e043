/**
 * Git tokens: scoped bearer secrets for git smart HTTP. A token names one repository (`asset:<id>` or
 * `agent-state:<id>`), a ref pattern, the repository actions it may perform and an expiry, and acts as a
 * principal of one tenant whose grants are checked again on every use.
 *
 * - Personal tokens (`pat`, `/api/me/git-tokens`) act as the user's principal in the repository's tenant,
 *   resolved at use time.
 * - Tenant tokens (`svc`, `/api/tenants/:t/git-tokens`) act as the principal that minted them.
 *
 * The plaintext secret is returned once by the mint; only its SHA-256 is stored.
 */
import { and, eq, isNull, type SQL } from "drizzle-orm";
import { defaultConditionRegistry } from "../authz/conditions";
import { evaluateGrants } from "../authz/evaluate";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { agent, agentInstance, asset, gitToken } from "../db/schema";
import { ApiError, badRequest, forbidden, notFound } from "../errors";
import { expandTokenActions, type RepoAction, verbForRepoAction } from "../git/protocol/repo-action";
import { newId } from "../lib/ids";
import { digestsEqual, randomSecret, sha256 } from "../lib/secret-digest";
import { loadTenantAccess, type TenantAccess } from "../tenancy/tenant-access";

export type GitTokenRow = typeof gitToken.$inferSelect;
export type GitTokenKind = GitTokenRow["kind"];

/** Recognizable prefixes (secret scanners, and the middleware rejects anything else without a lookup). */
export const gitTokenPrefixes = { pat: "itx_pat_", svc: "itx_svc_" } as const satisfies Record<GitTokenKind, string>;

/**
 * What the mint surface accepts (for the request schema): two aliases and the three canonical actions a client
 * can use over HTTP. `expandTokenActions` is the one place that expands them.
 */
export const mintableActions = ["can_read", "can_push", "receivePack", "createPack", "resolveRef"] as const;

/** A token must outlive its mint by at least this much. */
export const MIN_TOKEN_LIFETIME_MS = 60_000;

/** A repository as grants and token claims name it. */
const repositoryResource = /^(asset|agent-state):([A-Za-z0-9_-]{1,128})$/;

export type MintInput = {
  name: string;
  resource: string;
  refPattern: string;
  actions: readonly string[];
  expiresAt: string;
};

export type MintedGitToken = { row: GitTokenRow; secret: string };

type ValidClaims = { resource: string; refPattern: string; actions: RepoAction[]; expiresAt: Date };

/**
 * A ref pattern is a glob over ref names (`refs/heads/*`, `refs/heads/**`, `**`): printable, without
 * whitespace or the characters git forbids in ref names. Returns the problem, or null.
 */
export function refPatternProblem(pattern: string): string | null {
  if (pattern.length === 0) return "refPattern must not be empty";
  if (pattern.length > 256) return "refPattern must be at most 256 characters";
  if ([...pattern].some((ch) => ch <= " " || ch === "\x7f" || "~^:?[\\".includes(ch))) {
    return "refPattern must not contain whitespace, control characters or any of ~ ^ : ? [ \\";
  }
  if (pattern.includes("..") || pattern.includes("//")) return "refPattern must not contain '..' or '//'";
  return null;
}

/**
 * The mint validation shared by both surfaces; each problem is a 400 with its own code (`invalid_ref_pattern`,
 * `invalid_action`, `invalid_expires_at`, `invalid_resource`).
 */
export function validateClaims(input: MintInput, now: Date): ValidClaims {
  const refProblem = refPatternProblem(input.refPattern);
  if (refProblem) throw badRequest(refProblem, "invalid_ref_pattern");
  if (input.actions.length === 0) throw badRequest("actions must not be empty", "invalid_action");
  const { actions, rejected } = expandTokenActions(input.actions);
  if (rejected.length > 0) {
    throw badRequest(`Actions a git token cannot carry: ${rejected.join(", ")}`, "invalid_action", { rejected });
  }
  const expiresAt = new Date(input.expiresAt);
  if (Number.isNaN(expiresAt.getTime())) throw badRequest("expiresAt is not a date", "invalid_expires_at");
  if (expiresAt.getTime() < now.getTime() + MIN_TOKEN_LIFETIME_MS) {
    throw badRequest("expiresAt must be at least 60 seconds in the future", "invalid_expires_at");
  }
  if (!repositoryResource.test(input.resource)) {
    throw badRequest("resource must name one repository: asset:<id> or agent-state:<id>", "invalid_resource");
  }
  return { resource: input.resource, refPattern: input.refPattern, actions: actions.sort(), expiresAt };
}

/** The tenant that owns the repository a resource names, or null when there is no such repository. */
export async function repositoryTenant(db: Db, resource: string): Promise<string | null> {
  const match = repositoryResource.exec(resource);
  const id = match?.[2];
  if (!match || !id) return null;
  let rows: { tenantId: string }[];
  if (match[1] === "asset") {
    rows = await db.select({ tenantId: asset.tenantId }).from(asset).where(eq(asset.id, id)).limit(1);
  } else if (id.startsWith("ins_")) {
    rows = await db
      .select({ tenantId: agentInstance.tenantId })
      .from(agentInstance)
      .where(eq(agentInstance.id, id))
      .limit(1);
  } else {
    rows = await db.select({ tenantId: agent.tenantId }).from(agent).where(eq(agent.id, id)).limit(1);
  }
  return rows[0]?.tenantId ?? null;
}

/** The grant verbs a set of repository actions needs, e.g. receivePack → write. */
export function verbsOf(actions: readonly RepoAction[]): string[] {
  return [...new Set(actions.map(verbForRepoAction))];
}

/** No escalation: the minting principal must hold every verb the token's actions need on its repository. */
export function assertHoldsClaims(
  claims: Pick<ValidClaims, "resource" | "actions">,
  allowed: (resource: string, verb: string) => boolean,
): void {
  for (const verb of verbsOf(claims.actions)) {
    if (!allowed(claims.resource, verb)) {
      throw forbidden(`You cannot mint a token for ${verb} on ${claims.resource}: you do not hold that permission`);
    }
  }
}

async function insertToken(
  db: Db,
  values: { kind: GitTokenKind; tenantId: string; userId: string; principalId: string | null; name: string },
  claims: ValidClaims,
): Promise<MintedGitToken> {
  const secret = randomSecret(gitTokenPrefixes[values.kind]);
  const [row] = await db
    .insert(gitToken)
    .values({
      id: newId("gitToken"),
      ...values,
      tokenHash: await sha256(secret),
      resource: claims.resource,
      refPattern: claims.refPattern,
      actions: claims.actions,
      expiresAt: claims.expiresAt,
    })
    .returning();
  if (!row) throw new Error("Git token insert returned no row");
  return { row, secret };
}

/**
 * A personal token. The repository decides the tenant (an explicit `tenantId` must agree); the user must be
 * an active member there and hold what the token claims. A repository the user cannot see is a 404.
 */
export async function mintPersonalToken(
  db: Db,
  userId: string,
  input: MintInput & { tenantId?: string | undefined },
  context: { now?: Date; ip?: string | null } = {},
): Promise<MintedGitToken> {
  const now = context.now ?? new Date();
  const claims = validateClaims(input, now);
  const hidden = notFound("Repository not found");
  const tenantId = await repositoryTenant(db, claims.resource);
  if (!tenantId || (input.tenantId !== undefined && input.tenantId !== tenantId)) throw hidden;
  const { principal: member, grants } = await loadTenantAccess(db, tenantId, { userId }, now);
  if (member?.status !== "active") throw hidden;
  const ctx = { now: now.getTime(), principalId: member.id, tenantId, ip: context.ip ?? null };
  assertHoldsClaims(
    claims,
    (resource, verb) => evaluateGrants(grants, resource, verb, ctx, defaultConditionRegistry).allowed,
  );
  return insertToken(db, { kind: "pat", tenantId, userId, principalId: null, name: input.name }, claims);
}

/** A tenant (service) token acting as the minting principal; `allowed` evaluates that principal's grants. */
export async function mintTenantToken(
  db: Db,
  tenantId: string,
  minter: { userId: string; principalId: string },
  input: MintInput,
  allowed: (resource: string, verb: string) => boolean,
  now = new Date(),
): Promise<MintedGitToken> {
  const claims = validateClaims(input, now);
  if ((await repositoryTenant(db, claims.resource)) !== tenantId) throw notFound("Repository not found");
  assertHoldsClaims(claims, allowed);
  return insertToken(
    db,
    { kind: "svc", tenantId, userId: minter.userId, principalId: minter.principalId, name: input.name },
    claims,
  );
}

function listTokens(db: Db, filter: SQL | undefined, page: PageQuery) {
  return paginate(
    page,
    { time: gitToken.createdAt, id: gitToken.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(gitToken)
        .where(and(filter, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** The user's personal tokens, revoked ones included. */
export function listPersonalTokens(db: Db, userId: string, page: PageQuery) {
  return listTokens(db, and(eq(gitToken.userId, userId), eq(gitToken.kind, "pat")), page);
}

/** Every token bound to the tenant: its service tokens and its members' personal tokens. */
export function listTenantTokens(db: Db, tenantId: string, page: PageQuery) {
  return listTokens(db, eq(gitToken.tenantId, tenantId), page);
}

export async function getGitToken(db: Db, tokenId: string): Promise<GitTokenRow | null> {
  const [row] = await db.select().from(gitToken).where(eq(gitToken.id, tokenId)).limit(1);
  return row ?? null;
}

/** Revocation is soft and idempotent: the first revocation time is kept. */
async function revoke(db: Db, tokenId: string, now: Date): Promise<void> {
  await db
    .update(gitToken)
    .set({ revokedAt: now })
    .where(and(eq(gitToken.id, tokenId), isNull(gitToken.revokedAt)));
}

/** Revokes one of the user's own tokens; another user's token is a 403, unknown a 404. */
export async function revokeOwnToken(db: Db, userId: string, tokenId: string, now = new Date()): Promise<void> {
  const row = await getGitToken(db, tokenId);
  if (!row) throw notFound("Git token not found");
  if (row.userId !== userId) throw forbidden("This git token belongs to another user");
  await revoke(db, tokenId, now);
}

/** Revokes a token bound to the tenant; a token of another tenant is a 404. */
export async function revokeTenantToken(db: Db, tenantId: string, tokenId: string, now = new Date()): Promise<void> {
  const row = await getGitToken(db, tokenId);
  if (!row || row.tenantId !== tenantId) throw notFound("Git token not found");
  await revoke(db, tokenId, now);
}

/** A git token that authenticated, with the tenant it acts in, its principal there and that principal's grants. */
export type VerifiedGitToken = TenantAccess & { token: GitTokenRow };

/**
 * Checks a presented secret: the token exists (SHA-256 lookup, then a constant-time comparison), is not
 * revoked or expired, belongs to `urlTenantId` when the URL names one, and its principal is an active member.
 * Unknown, revoked and expired tokens are 401s (git then forgets the credential and asks again); a valid
 * token used where it does not belong is a 403. Whether a token exists is never revealed: an unknown
 * token and a mismatching digest get the same answer.
 */
export async function verifyGitToken(
  db: Db,
  secret: string,
  urlTenantId: string | undefined,
  now = new Date(),
): Promise<VerifiedGitToken> {
  // Anything that cannot be one of our tokens is refused without a lookup.
  if (!(secret.startsWith(gitTokenPrefixes.pat) || secret.startsWith(gitTokenPrefixes.svc))) {
    throw new ApiError(401, "unauthorized", "A git token is required (as the password, or a Bearer token)");
  }
  const invalid = new ApiError(401, "unauthorized", "Invalid git token");
  const digest = await sha256(secret);
  const [token] = await db.select().from(gitToken).where(eq(gitToken.tokenHash, digest)).limit(1);
  if (!token || !digestsEqual(new Uint8Array(token.tokenHash), digest)) throw invalid;
  if (token.revokedAt) throw new ApiError(401, "token_revoked", "This git token has been revoked");
  if (token.expiresAt.getTime() <= now.getTime())
    throw new ApiError(401, "token_expired", "This git token has expired");

  if (token.tenantId && urlTenantId && token.tenantId !== urlTenantId) {
    throw forbidden("This git token belongs to another tenant", "tenant_mismatch");
  }
  const tenantId = token.tenantId ?? urlTenantId;
  if (!tenantId) throw forbidden("This git token is not bound to a tenant", "tenant_mismatch");
  // Service tokens act as the principal that minted them; personal tokens as the user's principal.
  const actor = token.principalId ? { principalId: token.principalId } : { userId: token.userId };
  const access = await loadTenantAccess(db, tenantId, actor, now);
  if (!access.tenant) throw forbidden("This git token's tenant does not exist", "tenant_mismatch");
  if (!access.principal) throw forbidden("The token's principal is not a member of this tenant", "principal_not_found");
  if (access.principal.status !== "active") {
    throw forbidden("The token's principal is not active", "principal_suspended");
  }
  return { token, tenant: access.tenant, principal: access.principal, grants: access.grants };
}
