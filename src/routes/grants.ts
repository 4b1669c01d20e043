import { createRoute, z } from "@hono/zod-openapi";
import {
  createGrant,
  deleteGrant,
  explainPrincipalGrants,
  findGrantView,
  type GrantView,
  listGrants,
  updateGrant,
} from "../authz/grants";
import { getDb } from "../db/client";
import { grantEffects, grantOrigins } from "../db/schema";
import { audit, fieldsOf } from "../http/audit";
import { iso, isoOrNull } from "../http/format";
import { assertCanConfer, idResource, requireGrant } from "../http/middleware/require-grant";
import {
  errors,
  jsonBody,
  jsonRequest,
  noContent,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";
import { pushGrantUpdates } from "../runtime/grant-updates";

/** Resource and action patterns: `*` is the only wildcard; no whitespace or control characters. */
const Pattern = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");
const Conditions = z.record(z.string(), z.unknown()).openapi({
  description:
    "All must hold. Keys: `time_window`, `ip_range`, `max_spend_per_day`, `require_approval_above` (docs/authorization.md)",
  example: { time_window: { after: "08:00", before: "18:00", timezone: "Europe/Paris" } },
});
const IsoDateTime = z.iso.datetime({ offset: true }).openapi({ example: "2027-01-01T00:00:00.000Z" });

export const GrantSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    roleId: z.string().nullable(),
    roleName: z.string().nullable(),
    principalId: z.string().nullable(),
    principalName: z.string().nullable(),
    resource: z.string(),
    action: z.string(),
    effect: z.enum(grantEffects),
    conditions: Conditions.nullable(),
    origin: z.enum(grantOrigins),
    expiresAt: Timestamp.nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Grant");

function formatGrant(g: GrantView) {
  return {
    id: g.id,
    tenantId: g.tenantId,
    roleId: g.roleId,
    roleName: g.roleName,
    principalId: g.principalId,
    principalName: g.principalName,
    resource: g.resource,
    action: g.action,
    effect: g.effect,
    conditions: g.conditions ?? null,
    origin: g.origin,
    expiresAt: isoOrNull(g.expiresAt),
    createdAt: iso(g.createdAt),
    updatedAt: iso(g.updatedAt),
  };
}

const CreateGrantSchema = z
  .object({
    roleId: z.string().min(1).max(128).nullable().optional(),
    principalId: z.string().min(1).max(128).nullable().optional(),
    resource: Pattern.openapi({ example: "agent:*" }),
    action: Pattern.openapi({ example: "read" }),
    effect: z.enum(grantEffects),
    conditions: Conditions.nullable().optional(),
    origin: z.enum(grantOrigins).optional().openapi({ description: "Defaults to `role`; `system` is reserved" }),
    expiresAt: IsoDateTime.nullable().optional(),
  })
  .openapi("CreateGrant");
const UpdateGrantSchema = z
  .object({
    effect: z.enum(grantEffects).optional(),
    conditions: Conditions.nullable().optional(),
    expiresAt: IsoDateTime.nullable().optional(),
  })
  .openapi("UpdateGrant");
const ListQuery = PageQuerySchema.extend({
  principalId: z.string().max(128).optional(),
  roleId: z.string().max(128).optional(),
  resource: z.string().max(256).optional().openapi({ description: "Exact pattern string" }),
  effect: z.enum(grantEffects).optional(),
});
const GrantParams = TenantParams.extend({ grantId: pathParam("grantId", "grt_0123456789abcdef0123456789abcdef") });
const PrincipalParams = TenantParams.extend({
  principalId: pathParam("principalId", "prn_0123456789abcdef0123456789abcdef"),
});
const EvaluateSchema = z
  .object({
    resource: z.string().min(1).max(256).openapi({ example: "agent:agt_0123456789abcdef0123456789abcdef" }),
    action: z.string().min(1).max(64).openapi({ example: "read" }),
    at: IsoDateTime.optional().openapi({ description: "Evaluate as of this time (default: now)" }),
    ip: z.string().max(64).optional().openapi({ description: "Client address for `ip_range` conditions" }),
    spentToday: z
      .string()
      .regex(/^\d{1,18}(\.\d{1,18})?$/)
      .optional()
      .openapi({ description: "Amount spent today, for `max_spend_per_day`" }),
  })
  .openapi("EvaluateRequest");
const EvaluationSchema = z
  .object({
    principalId: z.string(),
    resource: z.string(),
    action: z.string(),
    effect: z.enum(grantEffects).openapi({ description: "`deny` when no grant matches" }),
    allowed: z.boolean(),
    reason: z.string(),
    decidedBy: z.string().nullable().openapi({ description: "Id of the winning grant" }),
    matchingGrants: z.array(
      z.object({
        id: z.string(),
        resource: z.string(),
        action: z.string(),
        effect: z.enum(grantEffects),
        origin: z.string(),
        roleId: z.string().nullable(),
        conditions: Conditions.nullable(),
        expiresAt: Timestamp.nullable(),
        specificity: z.number().int(),
        conditionOutcome: z.enum(["none", "met", "ask", "unmet", "invalid"]),
        counted: z.boolean().openapi({ description: "False when its conditions do not hold" }),
        winner: z.boolean(),
      }),
    ),
  })
  .openapi("Evaluation");

/** What an audit entry keeps of a grant. */
const grantFields = ["roleId", "principalId", "resource", "action", "effect", "conditions", "expiresAt"] as const;

const toDate = (value: string | null | undefined) =>
  value === undefined ? undefined : value === null ? null : new Date(value);
const grantResource = idResource("grant", "grantId");

export const grantRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/grants",
      tags: ["Grants"],
      summary: "List grants",
      middleware: [requireGrant("grant:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(GrantSchema, "GrantPage"), "A page of grants"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { principalId, roleId, resource, effect, ...page } = c.req.valid("query");
      const filter = { principalId, roleId, resource, effect };
      const result = await listGrants(getDb(c.env), c.get("tenant").id, filter, page);
      return c.json({ data: result.data.map(formatGrant), nextCursor: result.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/grants",
      tags: ["Grants"],
      summary: "Grant, deny or gate a permission for a role or a principal",
      description:
        "Needs `grant:*` create. Exactly one of `roleId`/`principalId`, of this tenant. The caller must itself be " +
        "allowed the (resource, action) it grants. Conditions are validated.",
      middleware: [requireGrant("grant:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateGrantSchema) },
      responses: { 201: jsonBody(GrantSchema, "The new grant"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      assertCanConfer(c, [body]);
      const db = getDb(c.env);
      const view = await createGrant(db, c.get("tenant").id, { ...body, expiresAt: toDate(body.expiresAt) });
      await audit(c, "grant.create", { type: "grant", id: view.id }, fieldsOf(body, grantFields));
      await pushGrantUpdates(c.env, db, c.get("tenant").id, view);
      return c.json(formatGrant(view), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/grants/{grantId}",
      tags: ["Grants"],
      summary: "Get a grant",
      middleware: [requireGrant(grantResource, "read")] as const,
      request: { params: GrantParams },
      responses: { 200: jsonBody(GrantSchema, "The grant"), ...errors(401, 403, 404) },
    }),
    async (c) =>
      c.json(formatGrant(await findGrantView(getDb(c.env), c.get("tenant").id, c.req.valid("param").grantId)), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/grants/{grantId}",
      tags: ["Grants"],
      summary: "Change a grant's effect, conditions or expiry",
      description: "Needs `grant:<id>` manage and the grant's own permission. System grants cannot be changed (403).",
      middleware: [requireGrant(grantResource, "manage")] as const,
      request: { params: GrantParams, ...jsonRequest(UpdateGrantSchema) },
      responses: { 200: jsonBody(GrantSchema, "The updated grant"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const { grantId } = c.req.valid("param");
      const body = c.req.valid("json");
      assertCanConfer(c, [await findGrantView(db, tenantId, grantId)]);
      const view = await updateGrant(db, tenantId, grantId, { ...body, expiresAt: toDate(body.expiresAt) });
      await audit(c, "grant.update", { type: "grant", id: grantId }, fieldsOf(body, grantFields));
      await pushGrantUpdates(c.env, db, tenantId, view);
      return c.json(formatGrant(view), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/grants/{grantId}",
      tags: ["Grants"],
      summary: "Revoke a grant",
      description: "Needs `grant:<id>` manage and the grant's own permission. System grants cannot be deleted (403).",
      middleware: [requireGrant(grantResource, "manage")] as const,
      request: { params: GrantParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const { grantId } = c.req.valid("param");
      const existing = await findGrantView(db, tenantId, grantId);
      assertCanConfer(c, [existing]);
      await deleteGrant(db, tenantId, grantId);
      await audit(c, "grant.delete", { type: "grant", id: grantId }, fieldsOf(existing, grantFields));
      await pushGrantUpdates(c.env, db, tenantId, existing);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/principals/{principalId}/evaluate",
      tags: ["Grants"],
      summary: "Explain what a principal may do",
      description:
        "Needs `grant:*` read. Evaluates the principal's grants for (resource, action) and explains the decision: " +
        "every matching grant with its specificity and condition outcome, and the winner.",
      middleware: [requireGrant("grant:*", "read")] as const,
      request: { params: PrincipalParams, ...jsonRequest(EvaluateSchema) },
      responses: { 200: jsonBody(EvaluationSchema, "The decision, explained"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const { principalId } = c.req.valid("param");
      const body = c.req.valid("json");
      const { explained, roleIdOf } = await explainPrincipalGrants(db, tenantId, principalId, {
        resource: body.resource,
        action: body.action,
        now: body.at ? Date.parse(body.at) : Date.now(),
        ip: body.ip ?? null,
        spentToday: body.spentToday ?? null,
      });
      const winner = explained.winner;
      const reason = winner
        ? `Grant ${winner.id} (${winner.effect} ${winner.action} on ${winner.resource}, specificity ${explained.specificity}) decides`
        : "No grant matches: denied by default";
      return c.json(
        {
          principalId,
          resource: body.resource,
          action: body.action,
          effect: explained.effect ?? "deny",
          allowed: explained.allowed,
          reason,
          decidedBy: winner?.id ?? null,
          matchingGrants: explained.matching.map((m) => ({
            id: m.grant.id,
            resource: m.grant.resource,
            action: m.grant.action,
            effect: m.grant.effect,
            origin: m.grant.origin ?? "role",
            roleId: roleIdOf(m.grant.id),
            conditions: m.grant.conditions,
            expiresAt: m.grant.expiresAt === null ? null : new Date(m.grant.expiresAt).toISOString(),
            specificity: m.specificity,
            conditionOutcome: m.conditions,
            counted: m.effective !== null,
            winner: m.grant.id === winner?.id,
          })),
        },
        200,
      );
    },
  );
