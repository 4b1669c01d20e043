/**
 * The errors the hub answers with, as values any layer can throw: a status, a stable machine-readable
 * code and a message for people. The HTTP layer turns them into the one error envelope.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const badRequest = (message: string, code = "bad_request", details?: unknown) =>
  new ApiError(400, code, message, details);
export const unauthorized = (message = "Authentication required") => new ApiError(401, "unauthorized", message);
export const forbidden = (message = "You do not have permission to perform this action", code = "forbidden") =>
  new ApiError(403, code, message);
export const notFound = (message = "Not found") => new ApiError(404, "not_found", message);
export const conflict = (message: string, code = "conflict") => new ApiError(409, code, message);

/** The envelope every error is sent in; its OpenAPI schema is `ErrorSchema` in `http/responses.ts`. */
export type ErrorBody = {
  error: { code: string; message: string; requestId: string; details?: unknown };
};
