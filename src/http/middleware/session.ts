/**
 * Resolves the caller on every request: a better-auth session (cookie, or `Authorization: Bearer <session
 * token>`) into `user` and `session`, or an agent's own API token (`Bearer ahi_…`) into `agent`.
 * Anonymous requests skip the database entirely.
 */
import type { Context, MiddlewareHandler } from "hono";
import { isAgentToken, verifyAgentToken } from "../../auth/agent-tokens";
import type { SessionUser } from "../../auth/better-auth";
import { getAuth } from "../../auth/better-auth";
import { getDb } from "../../db/client";
import { unauthorized } from "../../errors";
import type { AppEnv } from "../context";

export function loadSession(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("user", null);
    c.set("session", null);
    c.set("agent", null);
    const headers = c.req.raw.headers;
    const authorization = headers.get("authorization");
    const hasBearer = authorization !== null && authorization.slice(0, 7).toLowerCase() === "bearer ";
    const bearer = hasBearer ? (authorization as string).slice(7).trim() : "";
    if (isAgentToken(bearer)) {
      c.set("agent", await verifyAgentToken(getDb(c.env), bearer));
    } else if (hasBearer || headers.has("cookie")) {
      const result = await getAuth(c.env, getDb(c.env)).api.getSession({ headers });
      if (result) {
        c.set("user", result.user);
        c.set("session", result.session);
      }
    }
    await next();
  };
}

/** 401 unless a user is signed in. */
export function requireUser(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.get("user")) throw unauthorized();
    await next();
  };
}

/** The signed-in user, or a 401. */
export function signedInUser(c: Context<AppEnv>): SessionUser {
  const user = c.get("user");
  if (!user) throw unauthorized();
  return user;
}
