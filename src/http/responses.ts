/**
 * Building blocks for route definitions, so every route documents its success body and its error
 * statuses the same way (all errors share the one envelope schema).
 */
import { z } from "@hono/zod-openapi";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type PageQuery } from "../db/pagination";
import { approvalScopes, approvalStatuses } from "../db/schema";
import type { ErrorBody } from "../errors";

/** The one error envelope (`errors.ts` builds it). */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string().openapi({ example: "Tenant not found" }),
      requestId: z.string().openapi({ example: "3f2a0c1e-9b7d-4c61-8f0e-2d1f5a6b7c8d" }),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error") satisfies z.ZodType<ErrorBody>;

export function jsonBody<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A JSON request body (required). */
export function jsonRequest<T extends z.ZodType>(schema: T) {
  return { body: { required: true, content: { "application/json": { schema } } } };
}

const errorDescriptions = {
  400: "Invalid input (`validation_failed`, `invalid_json` or a specific code)",
  401: "Not signed in (`unauthorized`)",
  403: "Not allowed (`forbidden`)",
  404: "Not found, or not visible to the caller (`not_found`)",
  409: "Conflicts with the current state (`conflict`)",
  410: "Gone (`gone`)",
  413: "Body too large (`payload_too_large`)",
  415: "Body is not JSON (`unsupported_media_type`)",
  422: "Well-formed but unacceptable (e.g. a password that is too short)",
  426: "Only a WebSocket upgrade is accepted here (`upgrade_required`)",
  429: 'Too many requests (`rate_limited`): wait `Retry-After` seconds (docs/http-conventions.md, "Rate limits")',
  502: "Upstream unavailable",
  503: "Temporarily unavailable",
} as const;

type ErrorStatus = keyof typeof errorDescriptions;

/** ISO-8601 timestamps with milliseconds, as every response renders them. */
export const Timestamp = z.string().openapi({ format: "date-time", example: "2026-11-25T06:00:00.000Z" });

export const ApprovalSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    principalId: z.string().openapi({ description: "The agent instance's principal that asked" }),
    agentId: z.string(),
    instanceId: z.string().nullable(),
    sessionId: z.string().nullable(),
    resource: z.string(),
    action: z.string(),
    context: z.record(z.string(), z.unknown()).optional().openapi({
      description: "What the agent said about the action (tool arguments, an API request's method and path)",
    }),
    status: z.enum(approvalStatuses),
    scope: z.enum(approvalScopes).nullable(),
    message: z.string().nullable().openapi({ description: "A rejection's message, which the agent is given" }),
    createdAt: Timestamp,
    expiresAt: Timestamp.nullable(),
    resolvedAt: Timestamp.nullable(),
  })
  .openapi("Approval");

/** What an agent gets instead of a 403 when its grants answer `ask`. */
const PendingApprovalSchema = z
  .object({
    approval: ApprovalSchema,
    retry: z.string().openapi({ example: "Send the same request again once the approval is approved" }),
  })
  .openapi("PendingApproval");

const pendingApproval = jsonBody(
  PendingApprovalSchema,
  "An agent's request that its grants answer with `ask`: it waits for a person's approval (docs/approvals.md)",
);

/**
 * Error responses by status. A route that can answer 403 can also make an agent wait for approval (202);
 * one that needs a caller (401) is also rate limited (429).
 */
export function errors<S extends ErrorStatus>(...statuses: S[]) {
  const all = new Set<ErrorStatus>(statuses);
  if (all.has(401)) all.add(429);
  const out = {} as Record<S, { description: string; content: { "application/json": { schema: typeof ErrorSchema } } }>;
  for (const status of all) out[status as S] = jsonBody(ErrorSchema, errorDescriptions[status]);
  return all.has(403) ? { ...out, 202: pendingApproval } : out;
}

/** The `?limit=&cursor=` of every list route (`pagination.ts` runs the query). */
export const PageQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .default(DEFAULT_PAGE_SIZE)
    .openapi({ description: `Page size, 1–${MAX_PAGE_SIZE}`, example: 50 }),
  cursor: z
    .string()
    .max(512)
    .optional()
    .openapi({ description: "Opaque cursor from the previous page's `nextCursor`" }),
}) satisfies z.ZodType<PageQuery, unknown>;

/** A page of `item`s: `{data, nextCursor}`. */
export function pageOf<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({
      data: z.array(item),
      nextCursor: z.string().nullable().openapi({ description: "Null when there is no further page" }),
    })
    .openapi(name);
}

/** 204 with no body. */
export const noContent = { 204: { description: "Done; no content" } } as const;

/** Path parameter helper that documents itself in the OpenAPI document. */
export function pathParam(name: string, example: string) {
  return z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name, in: "path" }, example });
}

export const TenantParams = z.object({ tenantId: pathParam("tenantId", "tnt_0123456789abcdef0123456789abcdef") });
