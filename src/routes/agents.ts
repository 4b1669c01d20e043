import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  type AgentVersionRow,
  type AgentView,
  type AgentWriteOptions,
  createAgent,
  deleteAgent,
  findAgentVersion,
  findAgentView,
  listAgents,
  listAgentVersions,
  rollbackAgent,
  updateAgent,
} from "../catalog/agents";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { agentStatuses, agentVersionStatuses, grantEffects } from "../db/schema";
import { audit } from "../http/audit";
import type { AppEnv } from "../http/context";
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
import { undeployInstances } from "../runtime/instances";
import { RoleRefSchema } from "./principals";

const JsonObject = z.record(z.string(), z.unknown());
/** Resource and action patterns: `*` is the only wildcard; no whitespace or control characters. */
const Pattern = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");

const CredentialRequirementSchema = z
  .strictObject({
    providerName: z.string().min(1).max(200),
    scopes: z.array(z.string().min(1).max(200)).max(50).optional(),
    source: z.enum(["tenant", "creator", "invoker"]),
    name: z.string().min(1).max(200).optional(),
  })
  .openapi("CredentialRequirement", {
    description: "A credential the agent needs at launch, and whose credential (tenant, creator, invoker) it uses",
  });
const GrantRequirementSchema = z
  .strictObject({
    resource: Pattern.openapi({ example: "wallet:*" }),
    action: Pattern.openapi({ example: "read" }),
    effect: z.enum(grantEffects).optional().openapi({ description: "Defaults to `allow`" }),
    source: z.enum(["creator", "invoker"]),
    conditions: JsonObject.nullable().optional(),
  })
  .openapi("GrantRequirement", {
    description: "A grant the instance receives at launch, delegated from the definition's creator or the invoker",
  });

const AgentSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    creatorPrincipalId: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    systemPrompt: z.string().nullable(),
    contextConfig: JsonObject.optional(),
    initialState: JsonObject.optional(),
    modelConfig: JsonObject.optional(),
    currentVersion: z.string(),
    status: z.enum(agentStatuses),
    capabilities: JsonObject.optional(),
    credentialRequirements: z.array(CredentialRequirementSchema).optional(),
    grantRequirements: z.array(GrantRequirementSchema).optional(),
    roles: z.array(RoleRefSchema),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Agent");

/** Optional JSON fields are left out when unset. */
function formatAgent(a: AgentView) {
  return {
    id: a.id,
    tenantId: a.tenantId,
    creatorPrincipalId: a.creatorPrincipalId,
    name: a.name,
    description: a.description,
    systemPrompt: a.systemPrompt,
    ...(a.contextConfig ? { contextConfig: a.contextConfig } : {}),
    ...(a.initialState ? { initialState: a.initialState } : {}),
    ...(a.modelConfig ? { modelConfig: a.modelConfig } : {}),
    currentVersion: a.currentVersion,
    status: a.status,
    ...(a.capabilities ? { capabilities: a.capabilities } : {}),
    ...(a.credentialRequirements ? { credentialRequirements: a.credentialRequirements } : {}),
    ...(a.grantRequirements ? { grantRequirements: a.grantRequirements } : {}),
    roles: a.roles,
    createdAt: iso(a.createdAt),
    updatedAt: iso(a.updatedAt),
  };
}

const AgentVersionSchema = z
  .object({
    id: z.string(),
    version: z.string(),
    status: z.enum(agentVersionStatuses),
    createdAt: Timestamp,
  })
  .openapi("AgentVersion");
const AgentSnapshotSchema = z
  .object({
    name: z.string(),
    description: z.string().nullable(),
    systemPrompt: z.string().nullable(),
    contextConfig: JsonObject.nullable(),
    initialState: JsonObject.nullable(),
    modelConfig: JsonObject.nullable(),
    capabilities: JsonObject.nullable(),
    credentialRequirements: z.array(CredentialRequirementSchema).nullable(),
    grantRequirements: z.array(GrantRequirementSchema).nullable(),
    roleIds: z.array(z.string()),
  })
  .openapi("AgentSnapshot");
const AgentVersionDetailSchema = AgentVersionSchema.extend({ snapshot: AgentSnapshotSchema.nullable() }).openapi(
  "AgentVersionDetail",
);

function formatVersion(v: AgentVersionRow) {
  return { id: v.id, version: v.version, status: v.status, createdAt: iso(v.createdAt) };
}

const Name = z.string().trim().min(1).max(200).openapi({ example: "Support triage" });
const content = {
  description: z.string().max(2000).nullable(),
  systemPrompt: z.string().max(200_000).nullable().openapi({
    description: "The agent's instructions. **Needed to launch** (not blank).",
    example: "You triage support mail.",
  }),
  contextConfig: JsonObject.nullable(),
  initialState: JsonObject.nullable(),
  modelConfig: JsonObject.nullable().openapi({
    description:
      "**Needed to launch:** `defaultModel`, a non-empty string naming the model as its provider does. Other keys are " +
      "kept as given.",
    example: { defaultModel: "gpt-4o-mini" },
  }),
  capabilities: JsonObject.nullable(),
  credentialRequirements: z
    .array(CredentialRequirementSchema)
    .max(50)
    .nullable()
    .openapi({
      description:
        "**At least one is needed to launch:** the provider the model calls go through, and whose credential pays " +
        "(`tenant`, the definition's `creator`, or the `invoker`). The first one that resolves is the default source.",
      example: [{ providerName: "openai", source: "tenant" }],
    }),
  grantRequirements: z.array(GrantRequirementSchema).max(100).nullable(),
  roleIds: z
    .array(z.string().min(1).max(128))
    .max(50)
    .openapi({ description: "Roles of this tenant; every instance's principal gets them at launch" }),
};
const optionalContent = Object.fromEntries(Object.entries(content).map(([k, v]) => [k, v.optional()])) as {
  [K in keyof typeof content]: z.ZodOptional<(typeof content)[K]>;
};
const CreateAgentSchema = z.object({ name: Name, ...optionalContent }).openapi("CreateAgent");
const UpdateAgentSchema = z.object({ name: Name.optional(), ...optionalContent }).openapi("UpdateAgent");
const RollbackSchema = z
  .object({ version: z.string().min(1).max(20).openapi({ example: "2" }) })
  .openapi("RollbackRequest");

/** Definitions are large: an audit entry names the fields the request set and the version it made. */
const agentChanges = (body: object, view: AgentView) => ({
  name: view.name,
  fields: Object.keys(body),
  version: view.currentVersion,
});
const ListQuery = PageQuerySchema.extend({ status: z.enum(agentStatuses).optional() });
const AgentParams = TenantParams.extend({ agentId: pathParam("agentId", "agt_0123456789abcdef0123456789abcdef") });
const VersionParams = AgentParams.extend({ version: pathParam("version", "2") });
const agentResource = idResource("agent", "agentId");

/** The caller can only hand an agent (through roles or grant requirements) what they hold themselves. */
const conferAs = (c: Context<AppEnv>): AgentWriteOptions => ({
  confer: (permissions) => assertCanConfer(c, permissions),
});

const escalation =
  "Roles (`roleIds`) must be roles of this tenant (400), and the caller must hold every permission that a " +
  "newly linked role or a new grant requirement confers (403).";

export const agentRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/definitions",
      tags: ["Agents"],
      summary: "List agent definitions",
      description: "Needs `agent:*` read. Filter by `status`; each definition comes with its roles.",
      middleware: [requireGrant("agent:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(AgentSchema, "AgentPage"), "A page of definitions"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { status, ...page } = c.req.valid("query");
      return c.json(mapPage(await listAgents(getDb(c.env), c.get("tenant").id, { status }, page), formatAgent), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/agents/definitions",
      tags: ["Agents"],
      summary: "Create an agent definition",
      description:
        "Needs `agent:*` create. Creates the definition (status `deployed`), its version `1` with a snapshot of " +
        "the content, its role links, and a read grant on its state repository (`agent-state:<id>`) for the " +
        `caller, all or nothing. ${escalation} A definition may be saved incomplete (a draft); launching it needs ` +
        "a non-blank `systemPrompt`, `modelConfig.defaultModel` and at least one `credentialRequirements` entry, or " +
        "the launch is refused 409 `not_launchable` with every missing field in `details.issues` (docs/agents.md).",
      middleware: [requireGrant("agent:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateAgentSchema) },
      responses: { 201: jsonBody(AgentSchema, "The new definition"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const body = c.req.valid("json");
      const view = await createAgent(db, c.get("tenant").id, c.get("principal").id, body, conferAs(c));
      await audit(c, "agent.create", { type: "agent", id: view.id }, agentChanges(body, view));
      return c.json(formatAgent(view), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}",
      tags: ["Agents"],
      summary: "Get an agent definition",
      middleware: [requireGrant(agentResource, "read")] as const,
      request: { params: AgentParams },
      responses: { 200: jsonBody(AgentSchema, "The definition"), ...errors(401, 403, 404) },
    }),
    async (c) =>
      c.json(formatAgent(await findAgentView(getDb(c.env), c.get("tenant").id, c.req.valid("param").agentId)), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}",
      tags: ["Agents"],
      summary: "Edit an agent definition (records a new version)",
      description:
        "Needs `agent:<id>` manage. Only the given fields change (`null` clears a field, `roleIds: []` removes " +
        "every role). **Every** successful PATCH, even one that changes nothing, records the next version " +
        "(highest version + 1) with a snapshot of the resulting content and makes it the current one. Running " +
        `instances keep the content they were launched with. ${escalation}`,
      middleware: [requireGrant(agentResource, "manage")] as const,
      request: { params: AgentParams, ...jsonRequest(UpdateAgentSchema) },
      responses: { 200: jsonBody(AgentSchema, "The updated definition"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { agentId } = c.req.valid("param");
      const body = c.req.valid("json");
      const view = await updateAgent(getDb(c.env), c.get("tenant").id, agentId, body, conferAs(c));
      await audit(c, "agent.update", { type: "agent", id: agentId }, agentChanges(body, view));
      return c.json(formatAgent(view), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}",
      tags: ["Agents"],
      summary: "Stop an agent definition and its instances",
      description:
        "Needs `agent:<id>` manage. The definition is kept with status `stopped` (its versions, instances and " +
        "history stay readable); every instance still running is stopped, its open sessions end and the " +
        "instances' principals are deactivated. Repeating it is harmless.",
      middleware: [requireGrant(agentResource, "manage")] as const,
      request: { params: AgentParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { agentId } = c.req.valid("param");
      const stopped = await deleteAgent(getDb(c.env), c.get("tenant").id, agentId);
      await audit(c, "agent.delete", { type: "agent", id: agentId });
      await undeployInstances(c.env, stopped, "agent_deleted");
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}/versions",
      tags: ["Agents"],
      summary: "List the versions of a definition",
      description: "Needs `agent:<id>` read. Newest first; the current version is the one `active`.",
      middleware: [requireGrant(agentResource, "read")] as const,
      request: { params: AgentParams, query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(AgentVersionSchema, "AgentVersionPage"), "A page of versions"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const page = await listAgentVersions(
        getDb(c.env),
        c.get("tenant").id,
        c.req.valid("param").agentId,
        c.req.valid("query"),
      );
      return c.json(mapPage(page, formatVersion), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}/versions/{version}",
      tags: ["Agents"],
      summary: "Get a version with its content snapshot",
      middleware: [requireGrant(agentResource, "read")] as const,
      request: { params: VersionParams },
      responses: { 200: jsonBody(AgentVersionDetailSchema, "The version and its snapshot"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { agentId, version } = c.req.valid("param");
      const row = await findAgentVersion(getDb(c.env), c.get("tenant").id, agentId, version);
      return c.json({ ...formatVersion(row), snapshot: row.snapshot ?? null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/agents/definitions/{agentId}/rollback",
      tags: ["Agents"],
      summary: "Roll a definition back to an earlier version",
      description:
        "Needs `agent:<id>` manage. Restores the content and roles of the target version's snapshot (roles " +
        "deleted since are left out) and makes that version current (`currentVersion`, status `active`); no " +
        "new version is recorded, and the next PATCH takes the number after the highest. An unknown version " +
        `is a 400. ${escalation}`,
      middleware: [requireGrant(agentResource, "manage")] as const,
      request: { params: AgentParams, ...jsonRequest(RollbackSchema) },
      responses: { 200: jsonBody(AgentSchema, "The restored definition"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { agentId } = c.req.valid("param");
      const db = getDb(c.env);
      const { version } = c.req.valid("json");
      const view = await rollbackAgent(db, c.get("tenant").id, agentId, version, conferAs(c));
      await audit(c, "agent.rollback", { type: "agent", id: agentId }, { version });
      return c.json(formatAgent(view), 200);
    },
  );
