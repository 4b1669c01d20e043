/**
 * Sign-up, sign-in and sessions are better-auth's job: email and password on D1 through its drizzle
 * adapter. Browsers get the session cookie; scripts send the same session as `Authorization: Bearer`
 * (the bearer plugin; the token comes back in the `set-auth-token` header of sign-in and sign-up).
 *
 * Password hashing is better-auth's scrypt (N=16384, r=16, p=1). In workerd it resolves to the native
 * `node:crypto` scrypt through the package's `workerd` export condition, not the pure-JS fallback, which
 * keeps a sign-in within the Workers CPU budget (see docs/authorization.md for the figures).
 */
import { betterAuth } from "better-auth";
import { drizzleAdapter } from "better-auth/adapters/drizzle";
import { bearer } from "better-auth/plugins";
import type { Db } from "../db/client";
import { account, session, user, verification } from "../db/schema";

/** Only for `wrangler dev` and tests; a deployment sets the `AUTH_SECRET` secret (docs/deployment.md). */
const LOCAL_DEV_SECRET = "agent-hub-local-development-secret-do-not-deploy";
export const DEFAULT_BASE_URL = "http://127.0.0.1:8787";

export type AuthSettings = {
  secret?: string | undefined;
  baseUrl?: string | undefined;
  trustedOrigins?: string | undefined;
};

/** The origins of `AUTH_TRUSTED_ORIGINS` (comma-separated); the CORS middleware allows the same list. */
export function parseTrustedOrigins(setting: string | undefined): string[] {
  return (setting ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
}

export function createAuth(db: Db, settings: AuthSettings) {
  const baseURL = settings.baseUrl || DEFAULT_BASE_URL;
  const extraOrigins = parseTrustedOrigins(settings.trustedOrigins);
  return betterAuth({
    appName: "Agent Hub",
    basePath: "/api/auth",
    baseURL,
    secret: settings.secret || LOCAL_DEV_SECRET,
    trustedOrigins: [baseURL, ...extraOrigins],
    database: drizzleAdapter(db, { provider: "sqlite", schema: { user, session, account, verification } }),
    emailAndPassword: { enabled: true, autoSignIn: true, minPasswordLength: 8, maxPasswordLength: 128 },
    plugins: [bearer()],
    // Nothing leaves this machine.
    telemetry: { enabled: false },
  });
}

export type Auth = ReturnType<typeof createAuth>;
export type SessionUser = Auth["$Infer"]["Session"]["user"];
export type SessionInfo = Auth["$Infer"]["Session"]["session"];

/** What reading a session needs of better-auth's configuration: its cookie, signing secret and ages. */
export type SessionSettings = {
  cookieName: string;
  dontRememberCookieName: string;
  secret: string;
  expiresInMs: number;
  updateAgeMs: number;
};

export async function sessionSettings(auth: Auth): Promise<SessionSettings> {
  const context = await auth.$context;
  return {
    cookieName: context.authCookies.sessionToken.name,
    dontRememberCookieName: context.authCookies.dontRememberToken.name,
    secret: context.secret,
    expiresInMs: context.sessionConfig.expiresIn * 1000,
    updateAgeMs: context.sessionConfig.updateAge * 1000,
  };
}

// One better-auth instance per database client (`db/client.ts`: one per binding, one for the requests'
// D1 sessions) and settings: building it parses options and plugins (about half a millisecond).
const instances = new WeakMap<Db, { key: string; auth: Auth }>();

const settingsKeyOf = (env: Env) => JSON.stringify([env.AUTH_SECRET, env.AUTH_BASE_URL, env.AUTH_TRUSTED_ORIGINS]);

export function getAuth(env: Env, db: Db): Auth {
  const key = settingsKeyOf(env);
  let entry = instances.get(db);
  if (entry?.key !== key) {
    const settings = { secret: env.AUTH_SECRET, baseUrl: env.AUTH_BASE_URL, trustedOrigins: env.AUTH_TRUSTED_ORIGINS };
    entry = { key, auth: createAuth(db, settings) };
    instances.set(db, entry);
  }
  return entry.auth;
}

/**
 * Reading a session's cookie or token needs configuration only, the same for every instance built from
 * the same settings: kept from the first, so that a request that only reads its caller builds none.
 */
let settingsCache: { key: string; settings: Promise<SessionSettings> } | undefined;

export function sessionSettingsOf(env: Env, db: Db): Promise<SessionSettings> {
  const key = settingsKeyOf(env);
  if (settingsCache?.key !== key) settingsCache = { key, settings: sessionSettings(getAuth(env, db)) };
  return settingsCache.settings;
}
