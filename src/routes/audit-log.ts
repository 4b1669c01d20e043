import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { iso } from "../http/format";
import { requireGrant } from "../http/middleware/require-grant";
import { errors, jsonBody, PageQuerySchema, pageOf, TenantParams, Timestamp } from "../http/responses";
import { createRouter } from "../http/router";
import { type AuditRow, listAuditLog } from "../tenancy/audit";

export const AuditEntrySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    action: z.string().openapi({ example: "grant.create" }),
    resourceType: z.string().openapi({ example: "grant" }),
    resourceId: z.string().openapi({ example: "grt_0123456789abcdef0123456789abcdef" }),
    actorPrincipalId: z.string().nullable(),
    actorUserId: z.string().nullable().openapi({ description: "Null when an agent acted with its own token" }),
    changes: z
      .record(z.string(), z.unknown())
      .nullable()
      .openapi({ description: "The fields the request set; secrets only as `changed`" }),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string().openapi({ description: "The `X-Request-Id` of the request that made the change" }),
    createdAt: Timestamp,
  })
  .openapi("AuditEntry");

function formatEntry(row: AuditRow) {
  return {
    id: row.id,
    tenantId: row.tenantId,
    action: row.action,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    actorPrincipalId: row.actorPrincipalId,
    actorUserId: row.actorUserId,
    changes: row.changes ?? null,
    ip: row.ip,
    userAgent: row.userAgent,
    requestId: row.requestId,
    createdAt: iso(row.createdAt),
  };
}

const Word = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");
const IsoDateTime = z.iso.datetime({ offset: true }).openapi({ example: "2026-11-25T00:00:00.000Z" });
const ListQuery = PageQuerySchema.extend({
  action: Word.optional().openapi({ description: "Exact action, e.g. `grant.delete`" }),
  actorPrincipalId: Word.optional(),
  resourceType: Word.optional().openapi({ description: "e.g. `grant`, `principal`, `git_token`" }),
  resourceId: Word.optional(),
  since: IsoDateTime.optional().openapi({ description: "Entries at or after this time (inclusive)" }),
  until: IsoDateTime.optional().openapi({ description: "Entries before this time (exclusive)" }),
}).refine((q) => !q.since || !q.until || Date.parse(q.since) <= Date.parse(q.until), {
  message: "since must not be after until",
  path: ["since"],
});

const toDate = (value: string | undefined) => (value === undefined ? undefined : new Date(value));

export const auditLogRoutes = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/api/tenants/{tenantId}/audit-log",
    tags: ["Audit"],
    summary: "Read the tenant's audit log",
    description:
      "Needs `audit:*` manage (owners and admins; members do not see it). Every change to members, roles and their assignments, grants, credentials, " +
      "providers, wallets and their transactions, git tokens and agent definitions (with their asset " +
      "attachments): who, what, when, from where and the request id. Newest first; filters combine (AND). " +
      "Entries are never changed and outlive the object they name.",
    // `manage`, not `read`: members read everything else of the tenant, but who did what is for admins.
    middleware: [requireGrant("audit:*", "manage")] as const,
    request: { params: TenantParams, query: ListQuery },
    responses: {
      200: jsonBody(pageOf(AuditEntrySchema, "AuditEntryPage"), "A page of audit entries"),
      ...errors(400, 401, 403, 404),
    },
  }),
  async (c) => {
    const { limit, cursor, since, until, ...filter } = c.req.valid("query");
    const page = await listAuditLog(
      getDb(c.env),
      c.get("tenant").id,
      { ...filter, since: toDate(since), until: toDate(until) },
      { limit, cursor },
    );
    return c.json(mapPage(page, formatEntry), 200);
  },
);
