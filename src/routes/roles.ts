import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
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
import { pushGrantUpdates } from "../runtime/grant-updates";
import {
  assignRole,
  createRole,
  deleteRole,
  findRole,
  findRoleWithGrants,
  listRoles,
  type RoleRow,
  unassignRole,
  updateRole,
} from "../tenancy/roles";

export const RoleSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    isSystem: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Role");

function formatRole(r: RoleRow) {
  return {
    id: r.id,
    tenantId: r.tenantId,
    name: r.name,
    description: r.description,
    isSystem: r.isSystem,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}

const RoleName = z.string().trim().min(1).max(100).openapi({ example: "operators" });
const Description = z.string().max(1000).nullable();
const CreateRoleSchema = z.object({ name: RoleName, description: Description.optional() }).openapi("CreateRole");
const UpdateRoleSchema = z
  .object({ name: RoleName.optional(), description: Description.optional() })
  .openapi("UpdateRole");
/** What an audit entry keeps of a role. */
const roleFields = ["name", "description"] as const;
const RoleParams = TenantParams.extend({ roleId: pathParam("roleId", "rol_0123456789abcdef0123456789abcdef") });
const AssignmentParams = RoleParams.extend({
  principalId: pathParam("principalId", "prn_0123456789abcdef0123456789abcdef"),
});
const roleResource = idResource("role", "roleId");

export const roleRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/roles",
      tags: ["Roles"],
      summary: "List roles, system roles included",
      middleware: [requireGrant("role:*", "read")] as const,
      request: { params: TenantParams, query: PageQuerySchema },
      responses: { 200: jsonBody(pageOf(RoleSchema, "RolePage"), "A page of roles"), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(mapPage(await listRoles(getDb(c.env), c.get("tenant").id, c.req.valid("query")), formatRole), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/roles",
      tags: ["Roles"],
      summary: "Create a custom role",
      description: "Needs `role:*` create. Role names are unique in a tenant (409).",
      middleware: [requireGrant("role:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateRoleSchema) },
      responses: { 201: jsonBody(RoleSchema, "The new role"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const row = await createRole(getDb(c.env), c.get("tenant").id, body);
      await audit(c, "role.create", { type: "role", id: row.id }, fieldsOf(body, roleFields));
      return c.json(formatRole(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/roles/{roleId}",
      tags: ["Roles"],
      summary: "Get a role",
      middleware: [requireGrant(roleResource, "read")] as const,
      request: { params: RoleParams },
      responses: { 200: jsonBody(RoleSchema, "The role"), ...errors(401, 403, 404) },
    }),
    async (c) => c.json(formatRole(await findRole(getDb(c.env), c.get("tenant").id, c.req.valid("param").roleId)), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/roles/{roleId}",
      tags: ["Roles"],
      summary: "Rename or describe a custom role",
      description: "Needs `role:<id>` manage. System roles cannot be modified (403).",
      middleware: [requireGrant(roleResource, "manage")] as const,
      request: { params: RoleParams, ...jsonRequest(UpdateRoleSchema) },
      responses: { 200: jsonBody(RoleSchema, "The updated role"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { roleId } = c.req.valid("param");
      const body = c.req.valid("json");
      const row = await updateRole(getDb(c.env), c.get("tenant").id, roleId, body);
      await audit(c, "role.update", { type: "role", id: roleId }, fieldsOf(body, roleFields));
      return c.json(formatRole(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/roles/{roleId}",
      tags: ["Roles"],
      summary: "Delete a custom role",
      description:
        "Needs `role:<id>` manage. System roles cannot be deleted (403); a role still assigned is a 400. " +
        "The role's grants go with it.",
      middleware: [requireGrant(roleResource, "manage")] as const,
      request: { params: RoleParams },
      responses: { ...noContent, ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { roleId } = c.req.valid("param");
      await deleteRole(getDb(c.env), c.get("tenant").id, roleId);
      await audit(c, "role.delete", { type: "role", id: roleId });
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/principals/{principalId}/roles/{roleId}",
      tags: ["Roles"],
      summary: "Assign a role to a principal",
      description: "Needs `role:*` manage, and the caller must hold every permission the role confers. Idempotent.",
      middleware: [requireGrant("role:*", "manage")] as const,
      request: { params: AssignmentParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { principalId, roleId } = c.req.valid("param");
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const { grants } = await findRoleWithGrants(db, tenantId, roleId);
      assertCanConfer(c, grants);
      await assignRole(db, tenantId, principalId, roleId);
      await audit(c, "role.assign", { type: "principal", id: principalId }, { roleId });
      await pushGrantUpdates(c.env, db, tenantId, { principalId });
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/principals/{principalId}/roles/{roleId}",
      tags: ["Roles"],
      summary: "Remove a role from a principal",
      description: "Needs `role:*` manage. Scoped to the tenant. Removing `owner` from the last active owner is a 409.",
      middleware: [requireGrant("role:*", "manage")] as const,
      request: { params: AssignmentParams },
      responses: { ...noContent, ...errors(401, 403, 404, 409) },
    }),
    async (c) => {
      const { principalId, roleId } = c.req.valid("param");
      const db = getDb(c.env);
      await unassignRole(db, c.get("tenant").id, principalId, roleId);
      await audit(c, "role.unassign", { type: "principal", id: principalId }, { roleId });
      await pushGrantUpdates(c.env, db, c.get("tenant").id, { principalId });
      return c.body(null, 204);
    },
  );
