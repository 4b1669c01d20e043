import type { MiddlewareHandler } from "hono";
import { errorResponse } from "../error-envelope";

const bodyMethods = new Set(["POST", "PUT", "PATCH"]);
const jsonType = /^application\/([a-z0-9.+-]+\+)?json$/i;

/**
 * Rejects a request body that is not JSON with 415. Without this, a body sent as text/plain would be
 * read as an empty object and validated as if the client had sent `{}`.
 */
export function requireJsonBody(): MiddlewareHandler {
  return async (c, next) => {
    if (!bodyMethods.has(c.req.method)) return next();
    const length = c.req.header("content-length");
    const hasBody = (length !== undefined && length !== "0") || c.req.header("transfer-encoding") !== undefined;
    if (!hasBody) return next();
    const mediaType = (c.req.header("content-type") ?? "").split(";")[0]?.trim() ?? "";
    if (jsonType.test(mediaType)) return next();
    return errorResponse(
      c,
      415,
      "unsupported_media_type",
      `Request bodies must be JSON (Content-Type: application/json), not ${mediaType ? `"${mediaType}"` : "an unlabelled body"}`,
    );
  };
}
