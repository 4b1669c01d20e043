/**
 * Git token authentication for smart-HTTP routes. Stock git sends the token as the password of
 * `Authorization: Basic` (after a 401 challenge, or from a credential helper); scripts may send
 * `Authorization: Bearer <token>`. A request passes only when all of these hold:
 *
 * - the token verifies (`verifyGitToken`): it exists, is neither revoked nor expired, is bound to the
 *   URL's tenant, and its principal there is active;
 * - it names the repository the URL addresses;
 * - its actions include the request's RepoAction;
 * - the principal's grants still allow the action's verb (`read`/`write`) on that repository.
 *
 * Unknown, revoked and expired tokens are a 401 with the Basic challenge, so git drops a stale credential
 * from its helper and asks again; a valid token used beyond its scope is a 403.
 */
import type { Context, MiddlewareHandler } from "hono";
import { type VerifiedGitToken, verifyGitToken } from "../../auth/git-tokens";
import { getDb } from "../../db/client";
import { ApiError, badRequest, forbidden, notFound } from "../../errors";
import { isProtocolError } from "../../git/protocol/errors";
import { type RepoAction, repoActionFor, verbForRepoAction } from "../../git/protocol/repo-action";
import { base64ToBytes } from "../../lib/base64";
import type { AppEnv } from "../context";
import { errorResponse } from "../error-envelope";
import { isAllowed } from "./require-grant";

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
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64ToBytes(value));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return decoded.slice(colon + 1) || null;
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
    if (!secret) {
      return challenge(c, realm, "unauthorized", "A git token is required (as the password, or a Bearer token)");
    }
    let verified: VerifiedGitToken;
    try {
      verified = await verifyGitToken(getDb(c.env), secret, c.req.param("tenantId"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return challenge(c, realm, err.code, err.message);
      throw err;
    }
    const { token } = verified;
    c.set("tenant", verified.tenant);
    c.set("principal", verified.principal);
    c.set("grants", verified.grants);

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
    if (!isAllowed(c, resource, verb)) {
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
