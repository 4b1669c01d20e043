/**
 * The one error envelope. Every error the hub returns is
 * `{"error": {"code", "message", "requestId", "details?"}}`, whatever produced it: a route, a
 * validator, a library throwing HTTPException, a database constraint, or a bug.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, conflict, type ErrorBody } from "../errors";

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: unknown,
): Response {
  const body: ErrorBody = {
    error: { code, message, requestId: (c.get("requestId") as string | undefined) ?? "" },
  };
  if (details !== undefined) body.error.details = details;
  return c.json(body, status);
}

const httpCodes: Partial<Record<number, string>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  410: "gone",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "too_many_requests",
  503: "unavailable",
};

/** SQLite constraint failures that a client can provoke (duplicates, races, dangling references). */
function constraintError(err: unknown): ApiError | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e.message.includes("UNIQUE constraint failed") || e.message.includes("PRIMARY KEY constraint failed")) {
      return conflict("A resource with the same unique key already exists");
    }
    if (e.message.includes("FOREIGN KEY constraint failed")) {
      return conflict("The resource is referenced by, or references, another resource");
    }
  }
  return null;
}

/** `app.onError`: known errors keep their status; anything else is a 500 without internals. */
/** An ApiError thrown, or one a library wrapped (drizzle wraps what a query throws in its own error). */
function apiErrorIn(err: unknown): ApiError | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof ApiError) return e;
  }
  return null;
}

export function handleError(err: unknown, c: Context): Response {
  const api = apiErrorIn(err);
  if (api) return errorResponse(c, api.status, api.code, api.message, api.details);
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    // Hono's JSON validator throws this for a body that does not parse.
    if (status === 400 && /malformed json/i.test(err.message)) {
      return errorResponse(c, 400, "invalid_json", "Malformed JSON in request body");
    }
    return errorResponse(c, status, httpCodes[status] ?? "error", err.message || "Request failed");
  }
  const mapped = constraintError(err);
  if (mapped) return errorResponse(c, mapped.status, mapped.code, mapped.message);
  console.error(`[${c.get("requestId")}] unhandled error`, err);
  return errorResponse(c, 500, "internal_error", "Internal server error");
}

/** `app.notFound`: unknown routes answer in the same envelope. */
export function handleNotFound(c: Context): Response {
  return errorResponse(c, 404, "not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`);
}
