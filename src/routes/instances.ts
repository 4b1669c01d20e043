import { createRoute, z } from "@hono/zod-openapi";
import { listAgentOfferings } from "../catalog/offerings";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { instanceStatuses, turnPartTypes } from "../db/schema";
import { ApiError, badRequest, conflict, forbidden, notFound } from "../errors";
import { iso, isoOrNull } from "../http/format";
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
import { newId } from "../lib/ids";
import { MailPartNotFound } from "../mail/mime";
import { attachmentDisposition, extractPart, parseBlobId } from "../mail/parts";
import { openEventStream } from "../runtime/event-stream";
import {
  findInstance,
  getMail,
  type InstanceRow,
  listInstances,
  listMail,
  listTurns,
  markStopped,
  rawMail,
} from "../runtime/instances";
import { launchInstance } from "../runtime/launch";
import { unwrap } from "../runtime/rpc-result";
import { isLiveStatus } from "../runtime/sidecars";
import { instanceObject } from "../runtime/stubs";
import { parseTraceparent } from "../runtime/trace-context";
import { mutable } from "./sidecar-channels";

const InstanceSchema = z
  .object({
    id: z.string(),
    agentId: z.string(),
    agentName: z.string(),
    tenantId: z.string(),
    principalId: z.string().openapi({ description: "The instance's own principal: grant to it what the agent may do" }),
    address: z.string(),
    status: z.enum(instanceStatuses),
    publicKey: z.string().nullable(),
    kernelId: z.string().nullable(),
    sidecarId: z.string().nullable(),
    sessionId: z.string().nullable(),
    stopReason: z.string().nullable(),
    runtimeStatus: z.string().optional().openapi({ description: "`idle`, `busy` or `waiting_approval` while live" }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    endedAt: Timestamp.nullable(),
  })
  .openapi("AgentInstance");

function formatInstance(row: InstanceRow, runtimeStatus?: string | null) {
  return {
    id: row.id,
    agentId: row.agentId,
    agentName: row.agentName,
    tenantId: row.tenantId,
    principalId: row.principalId,
    address: row.address,
    status: row.status,
    publicKey: row.publicKey,
    kernelId: row.kernelId,
    sidecarId: row.sidecarId,
    sessionId: row.sessionId,
    stopReason: row.stopReason,
    ...(runtimeStatus ? { runtimeStatus } : {}),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    endedAt: isoOrNull(row.endedAt),
  };
}

const Address = z.object({ name: z.string().nullable(), email: z.string() });
const MailSchema = z
  .object({
    id: z.string(),
    sessionId: z.string(),
    instanceId: z.string().nullable(),
    direction: z.enum(["inbound", "outbound"]),
    status: z.string(),
    receivedAt: Timestamp,
    from: z.array(Address),
    to: z.array(Address),
    subject: z.string().nullable(),
    sentAt: z.string().nullable(),
    messageId: z.string().nullable().optional(),
    inReplyTo: z.string().nullable().optional(),
    references: z.array(z.string()).optional(),
    bodyValues: z.record(z.string(), z.object({ value: z.string(), isEncodingProblem: z.boolean() })),
    textBody: z.array(z.object({ partId: z.string(), type: z.string() })),
    htmlBody: z.array(z.object({ partId: z.string(), type: z.string() })),
    attachments: z.array(
      z.object({ blobId: z.string(), name: z.string().nullable(), type: z.string(), size: z.number() }),
    ),
    headers: z.record(z.string(), z.string()),
  })
  .passthrough()
  .openapi("Mail");

const TurnSchema = z
  .object({
    id: z.string(),
    sessionId: z.string(),
    instanceId: z.string(),
    model: z.string(),
    status: z.enum(["running", "completed", "failed"]),
    inputTokens: z.number(),
    outputTokens: z.number(),
    cacheReadTokens: z.number(),
    cacheWriteTokens: z.number(),
    thinkingTokens: z.number(),
    cost: z.string().openapi({
      description: "What the turn's model call was charged, exact decimal in the wallet's currency",
      example: "0.006",
    }),
    startedAt: Timestamp,
    endedAt: Timestamp.nullable(),
    traceId: z.string().nullable().openapi({ description: "The trace the turn belongs to (`GET …/traces/{traceId}`)" }),
    parts: z.array(
      z.object({
        id: z.string(),
        type: z.enum(turnPartTypes),
        content: z.string().nullable(),
        metadata: z.record(z.string(), z.unknown()).nullable(),
        ordinal: z.number(),
      }),
    ),
  })
  .openapi("Turn");

const LaunchSchema = z
  .object({
    agentId: z.string().min(1).max(128),
    walletId: z.string().min(1).max(128).optional().openapi({
      description:
        "The wallet model calls are charged to (needs `wallet:<id>` write); the tenant's default wallet when absent",
    }),
    invokerGrants: z
      .array(
        z.object({
          resource: z.string().min(1).max(500),
          action: z.string().min(1).max(100),
          effect: z.enum(["allow", "deny", "ask"]).optional(),
          conditions: z.record(z.string(), z.unknown()).nullable().optional(),
        }),
      )
      .max(100)
      .optional(),
  })
  .openapi("LaunchInstance");
const MailRequestSchema = z
  .object({
    content: z.string().min(1).max(100_000),
    subject: z.string().max(500).optional(),
    attachments: z.array(z.object({ type: z.string(), url: z.string(), mimeType: z.string().optional() })).optional(),
  })
  .openapi("SendMail");
const TraceHeaders = z.object({
  traceparent: z
    .string()
    .optional()
    .openapi({
      description:
        "W3C Trace Context: the turn this message starts joins the caller's trace (docs/observability.md); " +
        "a malformed value is ignored",
      example: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }),
});
const AbortSchema = z
  .object({
    reason: z
      .enum(["user_disconnect", "wallet_exhaustion", "admin_kill", "session_timeout", "credential_revocation"])
      .optional(),
  })
  .openapi("AbortInstance");
const ListQuery = PageQuerySchema.extend({
  agentId: z.string().max(128).optional(),
  status: z.enum(instanceStatuses).optional(),
});
const InstanceParams = TenantParams.extend({
  instanceId: pathParam("instanceId", "ins_0123456789abcdef0123456789abcdef"),
});
const BlobParams = TenantParams.extend({ blobId: pathParam("blobId", "blob_sml_0123456789abcdef0123456789abcdef_1") });
const instanceResource = idResource("instance", "instanceId");
const base = "/api/tenants/{tenantId}/agents/instances";

function requireRunning(row: InstanceRow) {
  if (row.status !== "running") throw conflict(`Instance is not running (status: ${row.status})`);
}

export const instanceRoutes = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: base,
      tags: ["Instances"],
      summary: "Launch an instance of an agent definition",
      description:
        "Needs `instance:*` create. Resolves the definition's credentials and delegated grants, writes the instance, " +
        "its principal and session in one batch, assigns an online sidecar of the tenant (least loaded first) and " +
        "waits until the sidecar has deployed and started it. 409 with the credential outcome as code " +
        "(`credential_missing`, `credential_expired`, …), or `not_launchable` when the definition lacks what a launch " +
        "needs (a system prompt, `modelConfig.defaultModel`, a credential requirement): `details.issues` then lists " +
        "every such field at once, as `{path, code: missing|invalid, message}` (docs/agents.md); 403 `insufficient_grants`; 502 " +
        "`sidecar_unavailable` when no sidecar runs it. Model calls are charged to `walletId`, or to the tenant's " +
        "default wallet: 409 `wallet_required` when there is none, 403 without `wallet:<id>` write, 409 " +
        "`currency_mismatch` when a model is priced in another currency than the wallet's.",
      middleware: [requireGrant("instance:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(LaunchSchema) },
      responses: { 201: jsonBody(InstanceSchema, "The running instance"), ...errors(400, 401, 403, 404, 409, 502) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const db = getDb(c.env);
      const tenant = c.get("tenant");
      const { instanceId } = await launchInstance(c.env, db, {
        tenant,
        agentId: body.agentId,
        invokerPrincipalId: c.get("principal").id,
        invokerGrants: body.invokerGrants ?? [],
        walletId: body.walletId,
        mayCharge: (walletId) => isAllowed(c, `wallet:${walletId}`, "write"),
      });
      const row = await findInstance(db, tenant.id, instanceId);
      return c.json(formatInstance(row, "idle"), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: base,
      tags: ["Instances"],
      summary: "List instances",
      middleware: [requireGrant("instance:*", "read")] as const,
      request: { params: TenantParams, query: ListQuery },
      responses: {
        200: jsonBody(pageOf(InstanceSchema, "InstancePage"), "A page of instances"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const page = await listInstances(getDb(c.env), c.get("tenant").id, c.req.valid("query"));
      return c.json(
        mapPage(page, (r) => formatInstance(r)),
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/blobs/{blobId}`,
      tags: ["Instances"],
      summary: "Download a mail part, decoded, with its own content type and file name",
      description: "`blobId` comes from a mail's `attachments`. Needs `instance:<id>` read on the mail's instance.",
      request: { params: BlobParams },
      responses: {
        200: { description: "The decoded part", content: { "application/octet-stream": { schema: z.string() } } },
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const parsed = parseBlobId(c.req.valid("param").blobId);
      if (!parsed) throw badRequest("Invalid blob ID format");
      const db = getDb(c.env);
      const mail = await getMail(db, c.get("tenant").id, parsed.mailId);
      if (!mail?.instanceId) throw notFound("Blob not found");
      if (!isAllowed(c, `instance:${mail.instanceId}`, "read")) throw forbidden();
      const raw = await rawMail(c.env.BLOBS, mail);
      if (!raw) throw notFound("Blob not found");
      let part: ReturnType<typeof extractPart>;
      try {
        part = extractPart(raw, parsed.partPath);
      } catch (err) {
        if (err instanceof MailPartNotFound) throw notFound("Blob not found");
        throw err;
      }
      // Served from the hub's origin: always a download, never rendered (an HTML part must not run here).
      const headers: Record<string, string> = {
        "content-type": part.contentType,
        "content-disposition": attachmentDisposition(part.filename),
        "x-content-type-options": "nosniff",
        "content-security-policy": "sandbox",
      };
      return c.body(part.body as unknown as ArrayBuffer, 200, headers);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}`,
      tags: ["Instances"],
      summary: "Get an instance, with its runtime status while live",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: { params: InstanceParams },
      responses: { 200: jsonBody(InstanceSchema, "The instance"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findInstance(getDb(c.env), c.get("tenant").id, c.req.valid("param").instanceId);
      const runtime = isLiveStatus(row.status) ? await instanceObject(c.env, row.id).runtime() : null;
      return c.json(formatInstance(row, runtime?.runtimeStatus), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}/health`,
      tags: ["Instances"],
      summary: "Liveness (the sidecar is connected) and readiness (the instance is serving)",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: { params: InstanceParams },
      responses: {
        200: jsonBody(
          z.object({
            liveness: z.enum(["ok", "unhealthy"]),
            readiness: z.enum(["ok", "not_ready"]),
            lastCheckedAt: Timestamp.nullable(),
          }),
          "Health",
        ),
        ...errors(401, 403, 404, 410),
      },
    }),
    async (c) => {
      const row = await findInstance(getDb(c.env), c.get("tenant").id, c.req.valid("param").instanceId);
      // A launch that failed (`error`) still answers, unhealthy and not ready; only a stopped one is gone.
      if (row.status === "stopped") throw new ApiError(410, "gone", "Instance has stopped");
      const runtime = await instanceObject(c.env, row.id).runtime();
      return c.json(
        {
          liveness: runtime.connected ? ("ok" as const) : ("unhealthy" as const),
          readiness:
            runtime.phase === "running" && runtime.runtimeStatus !== null ? ("ok" as const) : ("not_ready" as const),
          lastCheckedAt: new Date().toISOString(),
        },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}/offerings`,
      tags: ["Instances"],
      summary: "Offerings of the instance's agent definition",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: { params: InstanceParams },
      responses: {
        200: jsonBody(
          z.array(
            z.object({ id: z.string(), agentId: z.string(), agentName: z.string(), name: z.string() }).passthrough(),
          ),
          "The offerings",
        ),
        ...errors(401, 403, 404),
      },
    }),
    async (c) => {
      const db = getDb(c.env);
      const row = await findInstance(db, c.get("tenant").id, c.req.valid("param").instanceId);
      const rows = await listAgentOfferings(db, row.tenantId, row.agentId);
      return c.json(
        rows.map((o) => ({
          id: o.id,
          agentId: o.agentId,
          agentName: row.agentName,
          tenantId: o.tenantId,
          name: o.name,
          description: o.description,
          ...(o.pricing ? { pricing: o.pricing } : {}),
          createdAt: iso(o.createdAt),
        })),
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: `${base}/{instanceId}`,
      tags: ["Instances"],
      summary: "Stop an instance",
      description:
        "Needs `instance:<id>` manage. The sidecar is told to undeploy (at once, or when it reconnects), the " +
        "principal is deactivated, the session ended, subscribers get `session.ended`. 409 if already stopped.",
      middleware: [requireGrant(instanceResource, "manage")] as const,
      request: { params: InstanceParams },
      responses: { ...noContent, ...errors(401, 403, 404, 409) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const row = await findInstance(db, c.get("tenant").id, c.req.valid("param").instanceId);
      if (!isLiveStatus(row.status)) throw conflict("Instance is already stopped");
      unwrap(await instanceObject(c.env, row.id).stop("instance_stopped"));
      await markStopped(db, row, "instance_stopped");
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: `${base}/{instanceId}/abort`,
      tags: ["Instances"],
      summary: "Abort the current turn (kill switch)",
      middleware: [requireGrant(instanceResource, "manage")] as const,
      request: { params: InstanceParams, ...jsonRequest(AbortSchema) },
      responses: { ...noContent, ...errors(400, 401, 403, 404, 409, 502) },
    }),
    async (c) => {
      const row = await findInstance(getDb(c.env), c.get("tenant").id, c.req.valid("param").instanceId);
      requireRunning(row);
      unwrap(await instanceObject(c.env, row.id).abort(c.req.valid("json").reason ?? "user_disconnect"));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: `${base}/{instanceId}/sync`,
      tags: ["Instances"],
      summary: "Ask the sidecar to push the instance's state now",
      middleware: [requireGrant(instanceResource, "manage")] as const,
      request: { params: InstanceParams },
      responses: {
        202: jsonBody(z.object({ status: z.enum(["sent", "queued"]) }), "Requested"),
        ...errors(401, 403, 404, 409),
      },
    }),
    async (c) => {
      const row = await findInstance(getDb(c.env), c.get("tenant").id, c.req.valid("param").instanceId);
      requireRunning(row);
      return c.json({ status: unwrap(await instanceObject(c.env, row.id).sync()) }, 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: `${base}/{instanceId}/mail`,
      tags: ["Instances"],
      summary: "Send a message to the agent",
      description:
        "Needs `instance:<id>` write. The message is signed with the instance's key (public key at `…/mail-key`), " +
        "threaded after the conversation so far, and delivered to the sidecar — or kept and delivered in order " +
        "when it reconnects.",
      middleware: [requireGrant(instanceResource, "write")] as const,
      request: { params: InstanceParams, headers: TraceHeaders, ...jsonRequest(MailRequestSchema) },
      responses: { 201: jsonBody(MailSchema, "The stored message"), ...errors(400, 401, 403, 404, 409, 502) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const row = await findInstance(db, c.get("tenant").id, c.req.valid("param").instanceId);
      requireRunning(row);
      if (!row.sessionId) throw conflict("Instance has no active session");
      const body = c.req.valid("json");
      // The caller's principal is the signed-in user's in this tenant (sessions only reach this route).
      const from = {
        name: c.get("user")?.name ?? null,
        email: `${c.get("principal").refId}@${c.get("tenant").domain}`,
      };
      const mail = unwrap(
        await instanceObject(c.env, row.id).sendUserMail({
          mailId: newId("sessionMail"),
          content: body.content,
          subject: body.subject,
          from,
          trace: parseTraceparent(c.req.header("traceparent")),
        }),
      );
      return c.json({ ...mail.email, sessionId: row.sessionId, instanceId: row.id }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}/mail`,
      tags: ["Instances"],
      summary: "The instance's mail, both directions, newest first",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: { params: InstanceParams, query: PageQuerySchema },
      responses: { 200: jsonBody(pageOf(MailSchema, "MailPage"), "A page of mail"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const row = await findInstance(db, c.get("tenant").id, c.req.valid("param").instanceId);
      return c.json(await listMail(db, c.env.BLOBS, row.id, c.req.valid("query")), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}/mail-key`,
      tags: ["Instances"],
      summary: "The instance's mail signing key (OpenPGP, ASCII-armored public key)",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: { params: InstanceParams },
      responses: {
        200: { description: "The public key", content: { "application/pgp-keys": { schema: z.string() } } },
        ...errors(401, 403, 404),
      },
    }),
    async (c) => {
      const row = await findInstance(getDb(c.env), c.get("tenant").id, c.req.valid("param").instanceId);
      const key = await instanceObject(c.env, row.id).mailPublicKey();
      return c.body(key, 200, { "content-type": "application/pgp-keys" });
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}/turns`,
      tags: ["Instances"],
      summary: "Inference turns with their parts, newest first",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: { params: InstanceParams, query: PageQuerySchema },
      responses: { 200: jsonBody(pageOf(TurnSchema, "TurnPage"), "A page of turns"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const row = await findInstance(db, c.get("tenant").id, c.req.valid("param").instanceId);
      const page = await listTurns(db, row.id, c.req.valid("query"));
      return c.json(
        mapPage(page, (t) => ({
          id: t.id,
          sessionId: t.sessionId,
          instanceId: t.instanceId,
          model: t.model,
          status: t.status,
          inputTokens: t.inputTokens,
          outputTokens: t.outputTokens,
          cacheReadTokens: t.cacheReadTokens,
          cacheWriteTokens: t.cacheWriteTokens,
          thinkingTokens: t.thinkingTokens,
          cost: t.cost,
          startedAt: iso(t.startedAt),
          endedAt: isoOrNull(t.endedAt),
          traceId: t.traceId,
          parts: t.parts.map((p) => ({
            id: p.id,
            type: p.type,
            content: p.content,
            metadata: p.metadata ?? null,
            ordinal: p.ordinal,
          })),
        })),
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/{instanceId}/events`,
      tags: ["Instances"],
      summary: "Live events (Server-Sent Events), resumable",
      description:
        "Every event has an `id:` (the instance's sequence number). Reconnect with `Last-Event-ID` or `?cursor=` to " +
        "receive exactly the events after it, then live ones. Heartbeat comments every 15 s. See docs/events.md.",
      middleware: [requireGrant(instanceResource, "read")] as const,
      request: {
        params: InstanceParams,
        query: z.object({
          cursor: z
            .string()
            .regex(/^\d{1,15}$/, "a sequence number")
            .optional(),
        }),
      },
      responses: {
        200: { description: "An event stream", content: { "text/event-stream": { schema: z.string() } } },
        ...errors(400, 401, 403, 404, 410),
      },
    }),
    async (c) => {
      const row = await findInstance(getDb(c.env), c.get("tenant").id, c.req.valid("param").instanceId);
      if (!isLiveStatus(row.status)) throw new ApiError(410, "gone", "Instance has stopped");
      const headers = new Headers();
      const last = c.req.header("last-event-id");
      if (last && /^\d{1,15}$/.test(last)) headers.set("last-event-id", last);
      const cursor = c.req.valid("query").cursor;
      const url = `https://do/events${cursor ? `?cursor=${cursor}` : ""}`;
      return mutable(await openEventStream(c.env, row.id, url, headers, c.req.raw.signal));
    },
  );
