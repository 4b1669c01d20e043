/**
 * `/api/auth/*` is better-auth's handler. Its errors are rewritten into the hub's error envelope so
 * clients see one error shape everywhere. The main endpoints are documented in the OpenAPI document.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getAuth } from "../auth/better-auth";
import { getDb } from "../db/client";
import type { AppEnv } from "../http/context";
import { errorResponse } from "../http/error-envelope";
import { errors, jsonBody, jsonRequest } from "../http/responses";
import { createRouter } from "../http/router";

/** better-auth's own routes, under its `basePath`. */
export function isAuthRequest(c: Context): boolean {
  return c.req.path.startsWith("/api/auth/");
}

/** `INVALID_EMAIL_OR_PASSWORD` → `invalid_email_or_password`. */
function snake(code: string): string {
  return code.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

const fallbackCodes: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  422: "unprocessable",
  429: "too_many_requests",
};

async function toEnvelope(c: Context<AppEnv>, res: Response): Promise<Response> {
  if (res.status < 400 || res.status >= 500) return res;
  let body: { code?: unknown; message?: unknown } = {};
  try {
    body = (await res.clone().json()) as typeof body;
  } catch {
    // Not JSON: keep the status, use a generic message.
  }
  let code = typeof body.code === "string" ? snake(body.code) : (fallbackCodes[res.status] ?? "bad_request");
  let status = res.status;
  // A taken email is a duplicate like any other: 409 conflict, as everywhere in the API.
  if (code.startsWith("user_already_exists")) [status, code] = [409, "conflict"];
  const message = typeof body.message === "string" && body.message ? body.message : "Authentication request failed";
  const out = errorResponse(c, status as 400, code, message);
  // Keep cookies better-auth may clear on failure.
  for (const cookie of res.headers.getSetCookie()) out.headers.append("set-cookie", cookie);
  return out;
}

export const authRoutes = createRouter();

/**
 * Browsers send `Origin` on every POST, so better-auth's CSRF checks key off it. Node's fetch sends
 * `Sec-Fetch-Mode: cors` without an `Origin`, which better-auth would refuse as a browser with a null
 * origin. A request with neither `Origin`, `Referer` nor cookies is a script, not a browser: drop its
 * fetch-metadata headers so scripts sign in like curl does. Browser requests are checked unchanged.
 */
function forAuth(req: Request): Request {
  const h = req.headers;
  if (h.has("origin") || h.has("referer") || h.has("cookie")) return req;
  if (!h.has("sec-fetch-mode") && !h.has("sec-fetch-site") && !h.has("sec-fetch-dest")) return req;
  const headers = new Headers(h);
  for (const name of ["sec-fetch-mode", "sec-fetch-site", "sec-fetch-dest", "sec-fetch-user"]) headers.delete(name);
  return new Request(req, { headers });
}

authRoutes.on(["GET", "POST"], "/api/auth/*", async (c) => {
  const res = await getAuth(c.env, getDb(c.env)).handler(forAuth(c.req.raw));
  return toEnvelope(c, res);
});

// Documentation of the endpoints clients use; the handler above serves them.
const AuthUserSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    email: z.string(),
    emailVerified: z.boolean(),
    image: z.string().nullable().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("AuthUser");
const AuthResultSchema = z.object({ token: z.string().nullable(), user: AuthUserSchema }).openapi("AuthResult", {
  description: "The session token is also in the `set-auth-token` header and the session cookie",
});
const tokenHeader = {
  "set-auth-token": {
    description: "Session token for `Authorization: Bearer <token>`",
    schema: { type: "string" as const },
  },
};

authRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/api/auth/sign-up/email",
  tags: ["Auth"],
  security: [],
  summary: "Sign up with email and password",
  request: jsonRequest(
    z
      .object({
        name: z.string().min(1),
        email: z.email(),
        password: z.string().min(8).max(128),
      })
      .openapi("SignUp"),
  ),
  responses: {
    200: { ...jsonBody(AuthResultSchema, "Signed up and signed in"), headers: tokenHeader },
    ...errors(400, 409, 422, 429),
  },
});
authRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/api/auth/sign-in/email",
  tags: ["Auth"],
  security: [],
  summary: "Sign in with email and password",
  request: jsonRequest(
    z.object({ email: z.email(), password: z.string().min(1), rememberMe: z.boolean().optional() }).openapi("SignIn"),
  ),
  responses: {
    200: { ...jsonBody(AuthResultSchema, "Signed in"), headers: tokenHeader },
    ...errors(400, 401),
  },
});
authRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/api/auth/sign-out",
  tags: ["Auth"],
  security: [],
  summary: "Sign out (ends the session)",
  description: "Public: without a session there is nothing to end (400).",
  responses: { 200: jsonBody(z.object({ success: z.boolean() }), "Signed out"), ...errors(400) },
});
authRoutes.openAPIRegistry.registerPath({
  method: "get",
  path: "/api/auth/get-session",
  tags: ["Auth"],
  security: [],
  summary: "The current session and user, or null",
  responses: {
    200: jsonBody(
      z.object({ session: z.record(z.string(), z.unknown()), user: AuthUserSchema }).nullable(),
      "The session",
    ),
  },
});
