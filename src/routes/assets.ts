import { createRoute, z } from "@hono/zod-openapi";
import {
  type AssetRow,
  type AttachmentRow,
  assetKinds,
  attachAsset,
  createAsset,
  deleteAsset,
  detachAsset,
  findAsset,
  listAssets,
  listAttachments,
  updateAsset,
} from "../assets/assets";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { assetAccessModes } from "../db/schema";
import { forbidden } from "../errors";
import { audit } from "../http/audit";
import { iso } from "../http/format";
import { idResource, isAllowed, requireGrant } from "../http/middleware/require-grant";
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
import { hubSigningKey } from "../secrets/hub-signing-key";

export const AssetSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    kind: z.enum(assetKinds),
    name: z.string(),
    displayName: z.string().nullable(),
    creatorPrincipalId: z.string().nullable(),
    cloneUrl: z.string().openapi({ description: "Path of the smart-HTTP repository, relative to the hub" }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Asset");

const AttachmentSchema = z
  .object({
    id: z.string(),
    agentId: z.string(),
    assetId: z.string(),
    ref: z.string(),
    accessMode: z.enum(assetAccessModes),
    asset: AssetSchema,
    createdAt: Timestamp,
  })
  .openapi("AssetAttachment");

function formatAsset(a: AssetRow) {
  return {
    id: a.id,
    tenantId: a.tenantId,
    kind: a.kind as (typeof assetKinds)[number],
    name: a.name,
    displayName: a.displayName,
    creatorPrincipalId: a.creatorPrincipalId,
    cloneUrl: `/api/tenants/${a.tenantId}/assets/${a.kind}/${a.name}.git`,
    createdAt: iso(a.createdAt),
    updatedAt: iso(a.updatedAt),
  };
}

function formatAttachment({ attachment, asset }: { attachment: AttachmentRow; asset: AssetRow }) {
  return {
    id: attachment.id,
    agentId: attachment.agentId,
    assetId: attachment.assetId,
    ref: attachment.ref,
    accessMode: attachment.accessMode,
    asset: formatAsset(asset),
    createdAt: iso(attachment.createdAt),
  };
}

// The kind is a plain string here so that `agent-state` reaches the domain and gets its own error code.
const CreateAssetSchema = z
  .object({
    kind: z.enum([...assetKinds, "agent-state"]),
    name: z.string().min(1).max(100).openapi({ example: "greeting-skills" }),
    displayName: z.string().max(200).nullable().optional(),
  })
  .openapi("CreateAsset");
const UpdateAssetSchema = z.object({ displayName: z.string().max(200).nullable() }).openapi("UpdateAsset");
const AssetListQuery = PageQuerySchema.extend({ kind: z.enum(assetKinds).optional() });
const AssetParams = TenantParams.extend({ assetId: pathParam("assetId", "ast_0123456789abcdef0123456789abcdef") });
const AgentParams = TenantParams.extend({ agentId: pathParam("agentId", "agt_0123456789abcdef0123456789abcdef") });
const AttachmentParams = AgentParams.extend({
  assetId: pathParam("assetId", "ast_0123456789abcdef0123456789abcdef"),
});
const AttachSchema = z
  .object({
    assetId: z.string().min(1),
    ref: z
      .string()
      .regex(/^refs\/[A-Za-z0-9._/-]+$/, "must be a full ref name such as refs/heads/main")
      .optional(),
    accessMode: z.enum(assetAccessModes).optional(),
  })
  .openapi("AttachAsset");
const assetResource = idResource("asset", "assetId");
const agentResource = idResource("agent", "agentId");

export const assetRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/assets",
      tags: ["Assets"],
      summary: "List assets",
      middleware: [requireGrant("asset:*", "read")] as const,
      request: { params: TenantParams, query: AssetListQuery },
      responses: { 200: jsonBody(pageOf(AssetSchema, "AssetPage"), "A page of assets"), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(mapPage(await listAssets(getDb(c.env), c.get("tenant").id, c.req.valid("query")), formatAsset), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/assets",
      tags: ["Assets"],
      summary: "Create an asset with its git repository",
      description:
        "Needs `asset:*` create. Kinds: `skill` (pushes must keep a valid `SKILL.md` in every top-level directory) " +
        "and `repo` (any content). The repository starts with one commit on `main` holding a standard `.gitignore`. " +
        "Names are lowercase kebab-case (400 `invalid_name`); a duplicate is 409 `duplicate_asset`; `agent-state` is " +
        "400 `unsupported_kind`.",
      middleware: [requireGrant("asset:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateAssetSchema) },
      responses: { 201: jsonBody(AssetSchema, "The new asset"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const row = await createAsset(
        getDb(c.env),
        c.env.BLOBS,
        await hubSigningKey(c.env.SECRETS_KEY),
        c.get("tenant").id,
        c.get("principal").id,
        c.req.valid("json"),
      );
      return c.json(formatAsset(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/assets/{assetId}",
      tags: ["Assets"],
      summary: "Get an asset",
      middleware: [requireGrant(assetResource, "read")] as const,
      request: { params: AssetParams },
      responses: { 200: jsonBody(AssetSchema, "The asset"), ...errors(401, 403, 404) },
    }),
    async (c) =>
      c.json(formatAsset(await findAsset(getDb(c.env), c.get("tenant").id, c.req.valid("param").assetId)), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/assets/{assetId}",
      tags: ["Assets"],
      summary: "Change an asset's display name",
      middleware: [requireGrant(assetResource, "manage")] as const,
      request: { params: AssetParams, ...jsonRequest(UpdateAssetSchema) },
      responses: { 200: jsonBody(AssetSchema, "The asset"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const row = await updateAsset(
        getDb(c.env),
        c.get("tenant").id,
        c.req.valid("param").assetId,
        c.req.valid("json"),
      );
      return c.json(formatAsset(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/assets/{assetId}",
      tags: ["Assets"],
      summary: "Delete an asset, its repository and its attachments",
      middleware: [requireGrant(assetResource, "manage")] as const,
      request: { params: AssetParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      await deleteAsset(getDb(c.env), c.env.BLOBS, c.get("tenant").id, c.req.valid("param").assetId);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}/assets",
      tags: ["Assets"],
      summary: "List the assets attached to an agent definition",
      middleware: [requireGrant(agentResource, "read")] as const,
      request: { params: AgentParams },
      responses: {
        200: jsonBody(z.object({ data: z.array(AttachmentSchema) }), "The attachments, oldest first"),
        ...errors(401, 403, 404),
      },
    }),
    async (c) => {
      const { agentId } = c.req.valid("param");
      const rows = await listAttachments(getDb(c.env), c.get("tenant").id, agentId);
      return c.json({ data: rows.map(formatAttachment) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}/assets",
      tags: ["Assets"],
      summary: "Attach an asset to an agent definition",
      description:
        "Needs `agent:<id>` manage and `asset:<id>` read (`write` for `read-write` access). Instances launched " +
        "afterwards receive the asset at `ref` (default `refs/heads/main`). Attaching twice is a 409.",
      middleware: [requireGrant(agentResource, "manage")] as const,
      request: { params: AgentParams, ...jsonRequest(AttachSchema) },
      responses: { 201: jsonBody(AttachmentSchema, "The attachment"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const needed = body.accessMode === "read-write" ? "write" : "read";
      if (!isAllowed(c, `asset:${body.assetId}`, needed)) throw forbidden();
      const { agentId } = c.req.valid("param");
      const row = await attachAsset(getDb(c.env), c.get("tenant").id, agentId, body);
      await audit(c, "agent.asset_attach", { type: "agent", id: agentId }, { ...body });
      return c.json(formatAttachment(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}/assets/{assetId}",
      tags: ["Assets"],
      summary: "Detach an asset from an agent definition",
      middleware: [requireGrant(agentResource, "manage")] as const,
      request: { params: AttachmentParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { agentId, assetId } = c.req.valid("param");
      await detachAsset(getDb(c.env), c.get("tenant").id, agentId, assetId);
      await audit(c, "agent.asset_detach", { type: "agent", id: agentId }, { assetId });
      return c.body(null, 204);
    },
  );
