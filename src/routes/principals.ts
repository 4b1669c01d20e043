import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../db/client";
import { principalKinds, principalStatuses } from "../db/schema";
import { audit, fieldsOf } from "../http/audit";
import { iso } from "../http/format";
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
import {
  deletePrincipal,
  findPrincipalView,
  inviteMember,
  listPrincipals,
  type PrincipalView,
  setPrincipalStatus,
} from "../tenancy/principals";
import { findRoleWithGrants } from "../tenancy/roles";

export const RoleRefSchema = z.object({ id: z.string(), name: z.string() }).openapi("RoleRef");

export const PrincipalSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    kind: z.enum(principalKinds),
    refId: z.string(),
    displayName: z.string(),
    email: z.string().optional(),
    status: z.enum(principalStatuses),
    roles: z.array(RoleRefSchema),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Principal");

export function formatPrincipal(p: PrincipalView) {
  return {
    id: p.id,
    tenantId: p.tenantId,
    kind: p.kind,
    refId: p.refId,
    displayName: p.displayName,
    ...(p.email ? { email: p.email } : {}),
    status: p.status,
    roles: p.roles,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

const PrincipalParams = TenantParams.extend({
  principalId: pathParam("principalId", "prn_0123456789abcdef0123456789abcdef"),
});
const ListQuery = PageQuerySchema.extend({
  kind: z.enum(principalKinds).optional(),
  status: z.enum(principalStatuses).optional(),
});
const UpdatePrincipalSchema = z
  .object({ status: z.enum(["active", "suspended", "deactivated"]) })
  .openapi("UpdatePrincipal");
const InviteMemberSchema = z
  .object({ email: z.email().max(320), roleId: z.string().min(1).max(128).optional() })
  .openapi("InviteMember");

const principalResource = idResource("principal", "principalId");

export const principalRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/principals",
      tags: ["Principals"],
      summary: "List principals",
      description: "Needs `principal:*` read. Without a `status` filter, deactivated principals are left out.",
      middleware: [requireGrant("principal:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(PrincipalSchema, "PrincipalPage"), "A page of principals"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { kind, status, ...page } = c.req.valid("query");
      const result = await listPrincipals(getDb(c.env), c.get("tenant").id, { kind, status }, page);
      return c.json({ data: result.data.map(formatPrincipal), nextCursor: result.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/principals/{principalId}",
      tags: ["Principals"],
      summary: "Get a principal",
      middleware: [requireGrant(principalResource, "read")] as const,
      request: { params: PrincipalParams },
      responses: { 200: jsonBody(PrincipalSchema, "The principal"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const view = await findPrincipalView(getDb(c.env), c.get("tenant").id, c.req.valid("param").principalId);
      return c.json(formatPrincipal(view), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/principals/{principalId}",
      tags: ["Principals"],
      summary: "Activate, suspend or deactivate a principal",
      description: "Needs `principal:<id>` manage. The last active owner cannot be suspended or deactivated (409).",
      middleware: [requireGrant(principalResource, "manage")] as const,
      request: { params: PrincipalParams, ...jsonRequest(UpdatePrincipalSchema) },
      responses: { 200: jsonBody(PrincipalSchema, "The updated principal"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { principalId } = c.req.valid("param");
      const { status } = c.req.valid("json");
      const view = await setPrincipalStatus(getDb(c.env), c.get("tenant").id, principalId, status);
      await audit(c, "principal.update", { type: "principal", id: principalId }, { status });
      return c.json(formatPrincipal(view), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/principals/{principalId}",
      tags: ["Principals"],
      summary: "Delete a principal",
      description:
        "Needs `principal:<id>` manage. Its grants and role assignments go with it. A principal that created " +
        "agents, backs an instance or started a session is kept (409): deactivate it instead.",
      middleware: [requireGrant(principalResource, "manage")] as const,
      request: { params: PrincipalParams },
      responses: { ...noContent, ...errors(401, 403, 404, 409) },
    }),
    async (c) => {
      const { principalId } = c.req.valid("param");
      await deletePrincipal(getDb(c.env), c.get("tenant").id, principalId);
      await audit(c, "principal.delete", { type: "principal", id: principalId });
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/members/invite",
      tags: ["Principals"],
      summary: "Invite a registered user",
      description:
        "Needs `principal:*` create. Creates an `invited` principal, optionally with a role of this tenant (the " +
        "caller must hold every permission the role confers). The user accepts with " +
        "`POST /api/me/invitations/{principalId}/accept`.",
      middleware: [requireGrant("principal:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(InviteMemberSchema) },
      responses: { 201: jsonBody(PrincipalSchema, "The invited principal"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      if (body.roleId) {
        const { grants } = await findRoleWithGrants(db, tenantId, body.roleId);
        assertCanConfer(c, grants);
      }
      const email = body.email.toLowerCase();
      const view = await inviteMember(db, tenantId, { email, roleId: body.roleId });
      await audit(
        c,
        "principal.invite",
        { type: "principal", id: view.id },
        fieldsOf({ ...body, email }, ["email", "roleId"]),
      );
      return c.json(formatPrincipal(view), 201);
    },
  );
