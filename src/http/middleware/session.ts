/**
 * Resolves the caller: a better-auth session (cookie, or `Authorization: Bearer <session token>`) into
 * `user` and `session`, or an agent's own API token (`Bearer ahi_…`) into `agent`. On tenant routes the
 * tenant middleware runs first and resolves the caller in the same D1 round trip as the tenant; elsewhere
 * this takes one. Anonymous requests skip the database entirely.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { SessionUser } from "../../auth/better-auth";
import { type Caller, type Credential, credentialOf, loadCaller } from "../../auth/caller";
import { getDb } from "../../db/client";
import { unauthorized } from "../../errors";
import type { AppEnv } from "../context";

/** The credential the request carries, its signature checked; null when it has none that holds. */
export function requestCredential(c: Context<AppEnv>): Promise<Credential | null> {
  return credentialOf(c.env, getDb(c.env), c.req.raw.headers);
}

export function setCaller(c: Context<AppEnv>, caller: Caller | null): void {
  c.set("user", caller?.user ?? null);
  c.set("session", caller?.session ?? null);
  c.set("agent", caller?.agent ?? null);
}

export function loadSession(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Set (possibly to null) only once the caller is resolved: here, or by the tenant middleware.
    if (c.get("user") !== undefined) return next();
    const credential = await requestCredential(c);
    setCaller(c, credential ? await loadCaller(getDb(c.env), credential) : null);
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
