/**
 * CORS for the JSON API: browsers on the origins of `AUTH_TRUSTED_ORIGINS` (the same list better-auth
 * accepts the session cookie from) may call it with credentials. Any other origin gets no
 * `Access-Control-Allow-Origin`, so the browser withholds the response. Git smart HTTP and the sidecar
 * WebSocket channels are not browser APIs and are mounted outside this middleware.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { parseTrustedOrigins } from "../../auth/better-auth";
import type { AppEnv } from "../context";
import { BOOKMARK_HEADER } from "./d1-session";

export function apiCors(): MiddlewareHandler<AppEnv> {
  return cors({
    origin: (origin, c) => (parseTrustedOrigins(c.env.AUTH_TRUSTED_ORIGINS).includes(origin) ? origin : null),
    credentials: true,
    allowMethods: ["GET", "POST", "PATCH", "PUT", "DELETE"],
    allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", BOOKMARK_HEADER],
    exposeHeaders: [
      "X-Request-Id",
      BOOKMARK_HEADER,
      "Idempotent-Replayed",
      "Set-Auth-Token",
      "Retry-After",
      "RateLimit",
      "RateLimit-Policy",
    ],
    maxAge: 600,
  });
}
