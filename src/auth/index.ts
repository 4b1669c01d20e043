import type { Db } from "../db/client";
import { type Auth, createAuth } from "./better-auth";

export type { Auth, SessionInfo, SessionUser } from "./better-auth";

// One better-auth instance per isolate and database binding: building it parses options and plugins.
const instances = new WeakMap<object, Auth>();

export function getAuth(env: Env, db: Db): Auth {
  let auth = instances.get(env.DB);
  if (!auth) {
    auth = createAuth(db, {
      secret: env.AUTH_SECRET,
      baseUrl: env.AUTH_BASE_URL,
      trustedOrigins: env.AUTH_TRUSTED_ORIGINS,
    });
    instances.set(env.DB, auth);
  }
  return auth;
}
