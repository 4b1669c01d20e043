import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../db/client";
import { sidecarStatuses } from "../db/schema";
import { iso, isoOrNull } from "../http/format";
import { idResource, requireGrant } from "../http/middleware/require-grant";
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
  createSidecar,
  DEFAULT_SIDECAR_CAPACITY,
  deleteSidecar,
  effectiveStatus,
  findSidecar,
  listSidecars,
  recordHeartbeat,
  SIDECAR_SECRET_PREFIX,
  type SidecarWithLoad,
  updateSidecar,
} from "../runtime/sidecars";

const SidecarSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    url: z.string().nullable(),
    status: z.enum(sidecarStatuses).openapi({
      description: "`online` only while the sidecar has sent a heartbeat within the last 45 s",
    }),
    capacity: z.number().int(),
    liveInstances: z.number().int().openapi({
      description:
        "Instances assigned to it that are neither stopped nor failed (`error`): what counts against its capacity",
    }),
    lastHeartbeat: Timestamp.nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Sidecar");

const CreatedSidecarSchema = SidecarSchema.extend({
  secret: z.string().openapi({
    description: `The sidecar's bearer secret (\`${SIDECAR_SECRET_PREFIX}…\`); shown only in this response`,
  }),
}).openapi("CreatedSidecar");

function formatSidecar(row: SidecarWithLoad, now = new Date()) {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    url: row.url,
    status: effectiveStatus(row, now),
    capacity: row.capacity,
    liveInstances: row.liveInstances,
    lastHeartbeat: isoOrNull(row.lastHeartbeat),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

const Name = z.string().trim().min(1).max(100).openapi({ example: "host-1" });
const Url = z.string().trim().url().max(2048).nullable().openapi({ example: "https://runtime-1.example.com" });
const Capacity = z
  .number()
  .int()
  .min(1)
  .max(1000)
  .openapi({ description: "Most live instances it runs at once", example: 8 });
const CreateSidecarSchema = z
  .object({
    name: Name,
    url: Url.optional(),
    capacity: Capacity.optional().openapi({ default: DEFAULT_SIDECAR_CAPACITY }),
  })
  .openapi("CreateSidecar");
const UpdateSidecarSchema = z
  .object({ name: Name.optional(), url: Url.optional(), capacity: Capacity.optional() })
  .openapi("UpdateSidecar");
const SidecarParams = TenantParams.extend({
  sidecarId: pathParam("sidecarId", "sdc_0123456789abcdef0123456789abcdef"),
});
const sidecarResource = idResource("sidecar", "sidecarId");

export const sidecarRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/sidecars",
      tags: ["Sidecars"],
      summary: "List the tenant's sidecars with their load",
      middleware: [requireGrant("sidecar:*", "read")] as const,
      request: { params: TenantParams, query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(SidecarSchema, "SidecarPage"), "A page of sidecars"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const page = await listSidecars(getDb(c.env), c.get("tenant").id, c.req.valid("query"));
      const now = new Date();
      return c.json({ data: page.data.map((row) => formatSidecar(row, now)), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/sidecars",
      tags: ["Sidecars"],
      summary: "Register a sidecar",
      description:
        "Needs `sidecar:*` create. The secret is returned once, here; only its SHA-256 is stored. Names are " +
        "unique in a tenant (409). A new sidecar is `offline` until it connects or sends a heartbeat.",
      middleware: [requireGrant("sidecar:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateSidecarSchema) },
      responses: {
        201: jsonBody(CreatedSidecarSchema, "The sidecar and its one-time secret"),
        ...errors(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      const { row, secret } = await createSidecar(getDb(c.env), c.get("tenant").id, c.req.valid("json"));
      return c.json({ ...formatSidecar(row), secret }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/sidecars/{sidecarId}",
      tags: ["Sidecars"],
      summary: "Get a sidecar",
      middleware: [requireGrant(sidecarResource, "read")] as const,
      request: { params: SidecarParams },
      responses: { 200: jsonBody(SidecarSchema, "The sidecar"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findSidecar(getDb(c.env), c.get("tenant").id, c.req.valid("param").sidecarId);
      return c.json(formatSidecar(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/sidecars/{sidecarId}",
      tags: ["Sidecars"],
      summary: "Rename a sidecar or change its URL or capacity",
      description: "Needs `sidecar:<id>` manage. A lower capacity does not move running instances.",
      middleware: [requireGrant(sidecarResource, "manage")] as const,
      request: { params: SidecarParams, ...jsonRequest(UpdateSidecarSchema) },
      responses: { 200: jsonBody(SidecarSchema, "The updated sidecar"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { sidecarId } = c.req.valid("param");
      const row = await updateSidecar(getDb(c.env), c.get("tenant").id, sidecarId, c.req.valid("json"));
      return c.json(formatSidecar(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/sidecars/{sidecarId}",
      tags: ["Sidecars"],
      summary: "Remove a sidecar",
      description: "Needs `sidecar:<id>` manage. A sidecar with live (not stopped) instances is a 409.",
      middleware: [requireGrant(sidecarResource, "manage")] as const,
      request: { params: SidecarParams },
      responses: { ...noContent, ...errors(401, 403, 404, 409) },
    }),
    async (c) => {
      await deleteSidecar(getDb(c.env), c.get("tenant").id, c.req.valid("param").sidecarId);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/sidecars/{sidecarId}/heartbeat",
      tags: ["Sidecars"],
      summary: "Mark a sidecar alive",
      description: "Needs `sidecar:<id>` manage. Sets `lastHeartbeat` to now and the status to `online`.",
      middleware: [requireGrant(sidecarResource, "manage")] as const,
      request: { params: SidecarParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      await recordHeartbeat(getDb(c.env), c.get("tenant").id, c.req.valid("param").sidecarId, new Date());
      return c.body(null, 204);
    },
  );
