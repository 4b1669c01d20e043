/**
 * Git token authentication for smart-HTTP routes. Stock git sends the token as the password of
 * `Authorization: Basic` (after a 401 challenge, or from a credential helper); scripts may send
 * `Authorization: Bearer <token>`. A request passes only when all of these hold:
 *
 * - the token exists (SHA-256 lookup, then a constant-time digest comparison), is not revoked, not expired;
 * - it is bound to the URL's tenant, and its principal there is active;
 * - it names the repository the URL addresses (the reference never compared this claim);
 * - its actions include the request's RepoAction;
 * - the principal's grants still allow the action's verb (`read`/`write`) on that repository.
 *
 * Unknown, revoked and expired tokens are a 401 with the Basic challenge, so git drops a stale credential
 * from its helper and asks again; a valid token used beyond its scope is a 403.
 */
import { and, eq, sql } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { gitTokenPrefixes } from "../../auth/git-tokens";
import { defaultConditionRegistry } from "../../authz/conditions";
import { evaluateGrants } from "../../authz/evaluate";
import { grantsOfPrincipalQuery, toGrantRule } from "../../authz/grant-store";
import { getDb } from "../../db/client";
import { gitToken, principal, tenant } from "../../db/schema";
import { badRequest, forbidden, notFound } from "../../errors";
import { isProtocolError } from "../../git/protocol/errors";
import { matchRefPattern } from "../../git/protocol/ref-pattern";
import { type RepoAction, repoActionFor, verbForRepoAction } from "../../git/protocol/repo-action";
import { digestsEqual, sha256 } from "../../lib/secret-digest";
import type { AppEnv } from "../context";
import { errorResponse } from "../error-envelope";

export const GIT_REALM = "Agent Hub";

export type GitTokenAuthOptions = {
  /**
   * The repository the request addresses, as grants name it (`asset:<id>`, `agent-state:<id>`), or null when
   * the URL names no repository of the tenant. Runs after the token is authenticated, with `tenant` and
   * `principal` already set, so it can resolve names within `c.get("tenant").id`.
   */
  resourceOf: (c: Context<AppEnv>) => string | null | Promise<string | null>;
  /** The request's RepoAction. Defaults to the smart-HTTP mapping of the method, the path after `.git/` and
   * `?service=`. */
  actionOf?: (c: Context<AppEnv>) => RepoAction | null;
  /** Shown by git when it prompts for credentials. */
  realm?: string;
};

/**
 * The secret a request carries: the token of `Bearer <token>`, or the password of `Basic base64(user:pass)`
 * (the username is ignored). Schemes are case-insensitive. Anything unparseable is null.
 */
export function secretFromAuthorization(header: string | null | undefined): string | null {
  if (!header) return null;
  const space = header.indexOf(" ");
  if (space <= 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer") return value || null;
  if (scheme !== "basic" || !value) return null;
  let decoded: string;
  try {
    const bytes = Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0));
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return decoded.slice(colon + 1) || null;
}

/** Whether a ref may be advertised, served or updated under a token's ref pattern (§4.10 glob). */
export function refAllowed(refPattern: string, refName: string): boolean {
  return matchRefPattern(refPattern, refName);
}

/** The default RepoAction of a smart-HTTP request: `info/refs` → resolveRef, upload-pack → createPack,
 * receive-pack → receivePack. */
export function smartHttpAction(c: Context<AppEnv>): RepoAction | null {
  const path = c.req.path;
  const at = path.indexOf(".git/");
  if (at < 0) return null;
  return repoActionFor(c.req.method, path.slice(at + ".git/".length), c.req.query("service") ?? null);
}

function challenge(c: Context<AppEnv>, realm: string, code: string, message: string): Response {
  c.header("WWW-Authenticate", `Basic realm="${realm}", charset="UTF-8"`);
  return errorResponse(c, 401, code, message);
}

export function gitTokenAuth(options: GitTokenAuthOptions): MiddlewareHandler<AppEnv> {
  const realm = options.realm ?? GIT_REALM;
  const actionOf = options.actionOf ?? smartHttpAction;
  return async (c, next) => {
    const secret = secretFromAuthorization(c.req.header("authorization"));
    // Anything that cannot be one of our tokens is refused without a lookup.
    if (!secret || !(secret.startsWith(gitTokenPrefixes.pat) || secret.startsWith(gitTokenPrefixes.svc))) {
      return challenge(c, realm, "unauthorized", "A git token is required (as the password, or a Bearer token)");
    }
    const db = getDb(c.env);
    const digest = await sha256(secret);
    const [token] = await db.select().from(gitToken).where(eq(gitToken.tokenHash, digest)).limit(1);
    // Same answer for unknown and mismatching tokens: whether a token exists is not revealed.
    if (!token || !digestsEqual(new Uint8Array(token.tokenHash), digest)) {
      return challenge(c, realm, "unauthorized", "Invalid git token");
    }
    if (token.revokedAt) return challenge(c, realm, "token_revoked", "This git token has been revoked");
    if (token.expiresAt.getTime() <= Date.now()) {
      return challenge(c, realm, "token_expired", "This git token has expired");
    }

    const urlTenantId = c.req.param("tenantId");
    if (token.tenantId && urlTenantId && token.tenantId !== urlTenantId) {
      throw forbidden("This git token belongs to another tenant", "tenant_mismatch");
    }
    const tenantId = token.tenantId ?? urlTenantId;
    if (!tenantId) throw forbidden("This git token is not bound to a tenant", "tenant_mismatch");

    // Service tokens act as the principal that minted them; personal tokens as the user's principal.
    const actor = token.principalId
      ? and(eq(principal.id, token.principalId), eq(principal.tenantId, tenantId))
      : and(eq(principal.tenantId, tenantId), eq(principal.kind, "user"), eq(principal.refId, token.userId));
    const activeActorId = sql`(select ${principal.id} from ${principal} where ${and(actor, eq(principal.status, "active"))})`;
    const now = new Date();
    const [tenants, principals, grantRows] = await db.batch([
      db.select().from(tenant).where(eq(tenant.id, tenantId)),
      db.select().from(principal).where(actor).limit(1),
      grantsOfPrincipalQuery(db, tenantId, activeActorId, now),
    ]);
    const foundTenant = tenants[0];
    const actingAs = principals[0];
    if (!foundTenant) throw forbidden("This git token's tenant does not exist", "tenant_mismatch");
    if (!actingAs) throw forbidden("The token's principal is not a member of this tenant", "principal_not_found");
    if (actingAs.status !== "active") throw forbidden("The token's principal is not active", "principal_suspended");
    const grants = grantRows.map(toGrantRule);
    c.set("tenant", foundTenant);
    c.set("principal", actingAs);
    c.set("grants", grants);

    let action: RepoAction | null;
    try {
      action = actionOf(c);
    } catch (err) {
      if (isProtocolError(err)) throw badRequest(err.message);
      throw err;
    }
    if (!action) throw notFound("Not a git smart-HTTP endpoint");
    const actions = token.actions as RepoAction[];
    if (!actions.includes(action)) throw forbidden(`This git token does not allow ${action}`);

    const resource = await options.resourceOf(c);
    if (resource === null || resource !== token.resource) {
      throw forbidden("This git token is not valid for this repository", "resource_mismatch");
    }
    const verb = verbForRepoAction(action);
    const ctx = {
      now: now.getTime(),
      principalId: actingAs.id,
      tenantId,
      ip: c.req.header("cf-connecting-ip") ?? null,
    };
    if (!evaluateGrants(grants, resource, verb, ctx, defaultConditionRegistry).allowed) {
      throw forbidden(`The token's principal is not allowed to ${verb} ${resource}`);
    }

    c.set("gitToken", {
      id: token.id,
      kind: token.kind,
      userId: token.userId,
      resource,
      refPattern: token.refPattern,
      actions,
      expiresAt: token.expiresAt,
      action,
    });
    await next();
  };
}
