/**
 * Observability (docs/observability.md): usage metrics of the tenant and of one agent over a time range,
 * the logs of an agent and of an instance, and the traces of turns (also as OTLP/JSON).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { findAgent } from "../catalog/agents";
import { type Db, getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { logLevels, logSources } from "../db/schema";
import { badRequest } from "../errors";
import { iso, isoOrNull } from "../http/format";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import { errors, jsonBody, PageQuerySchema, pageOf, pathParam, TenantParams, Timestamp } from "../http/responses";
import { createRouter } from "../http/router";
import { type LogRow, listLogs } from "../runtime/instance-logs";
import { findInstance } from "../runtime/instances";
import { usageMetrics } from "../runtime/metrics";
import { getTrace, listTraces, MAX_TRACE_TURNS, type Span, toOtlp } from "../runtime/traces";

const DAY_MS = 24 * 60 * 60 * 1000;
const BUCKETS = { minute: 60_000, hour: 3_600_000, day: DAY_MS } as const;
const MAX_BUCKETS = 1_000;

const MetricsQuery = z.object({
  from: z.iso
    .datetime({ offset: true })
    .optional()
    .openapi({ description: "Start (inclusive); default: 24 h before `to`" }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: "End (exclusive); default: now" }),
  bucket: z
    .enum(["minute", "hour", "day"])
    .optional()
    .openapi({ description: "Adds a series with one entry per bucket" }),
});

const TotalsShape = {
  messageCount: z.number().int(),
  messages: z.object({ inbound: z.number().int(), outbound: z.number().int() }),
  turns: z.number().int(),
  failedTurns: z.number().int(),
  errorRate: z.number().openapi({ description: "Failed turns / turns (0 when there were none)" }),
  tokenUsage: z.object({
    input: z.number().int(),
    output: z.number().int(),
    cacheRead: z.number().int(),
    cacheWrite: z.number().int(),
    thinking: z.number().int(),
    total: z.number().int(),
  }),
  cost: z.string().openapi({ description: "Sum of the turns' costs in the wallets' currency, to 9 places" }),
  latencyMs: z.object({
    avg: z.number().int().nullable(),
    p50: z.number().int().nullable(),
    p95: z.number().int().nullable(),
  }),
};
const MetricsSchema = z
  .object({
    agentId: z.string().nullable(),
    from: Timestamp,
    to: Timestamp,
    ...TotalsShape,
    avgLatencyMs: z.number().int().nullable(),
    series: z
      .array(z.object({ start: Timestamp, ...TotalsShape }))
      .nullable()
      .openapi({ description: "Per bucket, oldest first, empty buckets included; null without `bucket`" }),
  })
  .openapi("MetricsResponse");

function range(query: z.infer<typeof MetricsQuery>) {
  const to = query.to ? Date.parse(query.to) : Date.now();
  const from = query.from ? Date.parse(query.from) : to - DAY_MS;
  if (from >= to) throw badRequest("`from` must be before `to`", "invalid_range");
  const bucketMs = query.bucket ? BUCKETS[query.bucket] : null;
  if (bucketMs && (to - from) / bucketMs > MAX_BUCKETS) {
    throw badRequest(`At most ${MAX_BUCKETS} buckets: widen the bucket or narrow the range`, "invalid_range");
  }
  return { from, to, bucketMs };
}

async function metrics(env: Env, tenantId: string, agentId: string | null, query: z.infer<typeof MetricsQuery>) {
  const { from, to, bucketMs } = range(query);
  const db = getDb(env);
  if (agentId) await findAgent(db, tenantId, agentId);
  const { totals, series } = await usageMetrics(db, { tenantId, agentId, from, to, bucketMs });
  return {
    agentId,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    ...totals,
    avgLatencyMs: totals.latencyMs.avg,
    series,
  };
}

// Logs and traces ------------------------------------------------------------------------------

const TimeRangeQuery = {
  startTime: z.iso.datetime({ offset: true }).optional().openapi({ description: "Start (inclusive), ISO 8601" }),
  endTime: z.iso.datetime({ offset: true }).optional().openapi({ description: "End (exclusive), ISO 8601" }),
};

/** The range in ms; a range that ends before it starts is a 400. */
function timeRange(query: { startTime?: string | undefined; endTime?: string | undefined }) {
  const startTime = query.startTime ? Date.parse(query.startTime) : undefined;
  const endTime = query.endTime ? Date.parse(query.endTime) : undefined;
  if (startTime !== undefined && endTime !== undefined && startTime >= endTime) {
    throw badRequest("`startTime` must be before `endTime`", "invalid_range");
  }
  return { startTime, endTime };
}

const LogsQuery = PageQuerySchema.extend({
  level: z
    .enum(logLevels)
    .optional()
    .openapi({ description: "This level or more severe (`warn`: warnings and errors)" }),
  ...TimeRangeQuery,
});

const LogEntrySchema = z
  .object({
    id: z.string(),
    timestamp: Timestamp,
    level: z.enum(logLevels),
    source: z.enum(logSources).openapi({ description: "`hub`: the hub recorded it; `sidecar`: a `log` frame" }),
    message: z.string(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    agentId: z.string(),
    instanceId: z.string(),
  })
  .openapi("LogEntry");

function formatLog(row: LogRow) {
  return {
    id: row.id,
    timestamp: iso(row.createdAt),
    level: row.level,
    source: row.source,
    message: row.message,
    metadata: row.metadata ?? null,
    agentId: row.agentId,
    instanceId: row.instanceId,
  };
}

const logResponses = {
  200: jsonBody(pageOf(LogEntrySchema, "LogPage"), "A page of log entries"),
  ...errors(400, 401, 403, 404),
};

/** A page of the logs of what `scope` finds in the tenant (a 404 when it finds nothing), after the query's checks. */
async function logsOf(
  env: Env,
  query: z.infer<typeof LogsQuery>,
  tenantId: string,
  scope: (db: Db) => Promise<{ agentId: string } | { instanceId: string }>,
) {
  const range = timeRange(query);
  const db = getDb(env);
  return mapPage(await listLogs(db, tenantId, await scope(db), { ...query, ...range }), formatLog);
}

const TraceId = z.string().regex(/^[0-9a-f]{32}$/, "expected a trace id: 32 lowercase hex digits");

const TracesQuery = PageQuerySchema.extend({
  agentId: z.string().max(128).optional(),
  instanceId: z.string().max(128).optional(),
  sessionId: z.string().max(128).optional(),
  traceId: TraceId.optional(),
  ...TimeRangeQuery,
});

const SpanSchema = z
  .object({
    spanId: z.string().openapi({ description: "16 hex digits", example: "00f067aa0ba902b7" }),
    traceId: z.string().openapi({ description: "32 hex digits", example: "4bf92f3577b34da6a3ce929d0e0e4736" }),
    parentSpanId: z.string().nullable(),
    name: z.string().openapi({ description: "`turn`, `chat <model>` or `execute_tool <tool>`" }),
    kind: z.enum(["internal", "client"]),
    agentId: z.string(),
    instanceId: z.string(),
    turnId: z.string(),
    startTime: Timestamp,
    endTime: Timestamp.nullable(),
    durationMs: z.number().int().nullable(),
    status: z.enum(["ok", "error"]).nullable().openapi({ description: "Null while running" }),
    statusMessage: z.string().nullable(),
    attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  })
  .openapi("SpanResponse");

const TraceSchema = z.object({ traceId: z.string(), spans: z.array(SpanSchema) }).openapi("TraceResponse");

const OtlpAttributes = z.array(z.object({ key: z.string(), value: z.record(z.string(), z.unknown()) }));
const OtlpTraceSchema = z
  .object({
    resourceSpans: z.array(
      z.object({
        resource: z.object({ attributes: OtlpAttributes }),
        scopeSpans: z.array(
          z.object({
            scope: z.object({ name: z.string(), version: z.string() }),
            spans: z.array(
              z.object({
                traceId: z.string(),
                spanId: z.string(),
                parentSpanId: z.string().optional(),
                name: z.string(),
                kind: z.number().int(),
                startTimeUnixNano: z.string(),
                endTimeUnixNano: z.string().optional(),
                attributes: OtlpAttributes,
                status: z.object({ code: z.number().int().optional(), message: z.string().optional() }),
              }),
            ),
          }),
        ),
      }),
    ),
  })
  .openapi("OtlpTrace", { description: "An OTLP/JSON ExportTraceServiceRequest" });

function formatSpan(span: Span) {
  return {
    spanId: span.spanId,
    traceId: span.traceId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    agentId: span.agentId,
    instanceId: span.instanceId,
    turnId: span.turnId,
    startTime: iso(span.startTime),
    endTime: isoOrNull(span.endTime),
    durationMs: span.endTime ? span.endTime.getTime() - span.startTime.getTime() : null,
    status: span.status,
    statusMessage: span.statusMessage,
    attributes: span.attributes,
  };
}

const AgentParams = TenantParams.extend({ agentId: pathParam("agentId", "agt_0123456789abcdef0123456789abcdef") });
const InstanceParams = TenantParams.extend({
  instanceId: pathParam("instanceId", "ins_0123456789abcdef0123456789abcdef"),
});
const TraceParams = TenantParams.extend({
  traceId: TraceId.openapi({ param: { name: "traceId", in: "path" }, example: "4bf92f3577b34da6a3ce929d0e0e4736" }),
});

const tags = ["Observability"];

export const observabilityRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/metrics",
      tags,
      summary: "Usage metrics of the tenant",
      description: "Needs `agent:*` read. Turns and mail that started in the range, over every agent of the tenant.",
      middleware: [requireGrant("agent:*", "read")] as const,
      request: { params: TenantParams, query: MetricsQuery },
      responses: { 200: jsonBody(MetricsSchema, "The metrics"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => c.json(await metrics(c.env, c.get("tenant").id, null, c.req.valid("query")), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/{agentId}/metrics",
      tags,
      summary: "Usage metrics of one agent",
      description: "Needs `agent:<id>` read. Every instance of the agent definition.",
      middleware: [requireGrant(idResource("agent", "agentId"), "read")] as const,
      request: { params: AgentParams, query: MetricsQuery },
      responses: { 200: jsonBody(MetricsSchema, "The metrics"), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(await metrics(c.env, c.get("tenant").id, c.req.valid("param").agentId, c.req.valid("query")), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/{agentId}/logs",
      tags,
      summary: "Logs of one agent",
      description:
        "Needs `agent:<id>` read. What the hub recorded about every instance of the agent definition and what " +
        "their sidecars sent in `log` frames, newest first. Entries are kept for 7 days, at most 10,000 per instance.",
      middleware: [requireGrant(idResource("agent", "agentId"), "read")] as const,
      request: { params: AgentParams, query: LogsQuery },
      responses: logResponses,
    }),
    async (c) => {
      const tenantId = c.get("tenant").id;
      const { agentId } = c.req.valid("param");
      const page = await logsOf(c.env, c.req.valid("query"), tenantId, async (db) => ({
        agentId: (await findAgent(db, tenantId, agentId)).id,
      }));
      return c.json(page, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/instances/{instanceId}/logs",
      tags,
      summary: "Logs of one instance",
      description: "Needs `instance:<id>` read. The same entries as the agent's logs, of this instance only.",
      middleware: [requireGrant(idResource("instance", "instanceId"), "read")] as const,
      request: { params: InstanceParams, query: LogsQuery },
      responses: logResponses,
    }),
    async (c) => {
      const tenantId = c.get("tenant").id;
      const { instanceId } = c.req.valid("param");
      const page = await logsOf(c.env, c.req.valid("query"), tenantId, async (db) => ({
        instanceId: (await findInstance(db, tenantId, instanceId)).id,
      }));
      return c.json(page, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/traces",
      tags,
      summary: "Turns and their traces",
      description:
        "Needs `instance:*` read. One entry per turn, newest first: the turn's span, whose `traceId` names its " +
        "trace (the steps of one tool loop share one). Filters combine; times apply to the turn's start.",
      middleware: [requireGrant("instance:*", "read")] as const,
      request: { params: TenantParams, query: TracesQuery },
      responses: {
        200: jsonBody(pageOf(SpanSchema, "TurnSpanPage"), "A page of turn spans"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const range = timeRange(query);
      const page = await listTraces(getDb(c.env), c.get("tenant").id, { ...query, ...range });
      return c.json(mapPage(page, formatSpan), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/traces/{traceId}",
      tags,
      summary: "One trace: its turns, model calls and tool calls",
      description:
        "Needs `instance:*` read. `format=otlp` answers an OTLP/JSON `ExportTraceServiceRequest` that any " +
        `OpenTelemetry collector accepts (\`POST /v1/traces\`). At most the first ${MAX_TRACE_TURNS} turns of a trace.`,
      middleware: [requireGrant("instance:*", "read")] as const,
      request: {
        params: TraceParams,
        query: z.object({
          format: z.enum(["json", "otlp"]).default("json").openapi({ description: "`otlp`: OTLP/JSON" }),
        }),
      },
      responses: {
        200: jsonBody(z.union([TraceSchema, OtlpTraceSchema]), "The trace (TraceResponse, or OTLP/JSON)"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { traceId } = c.req.valid("param");
      const spans = await getTrace(getDb(c.env), c.get("tenant").id, traceId);
      if (c.req.valid("query").format === "otlp") return c.json(toOtlp(spans), 200);
      return c.json({ traceId, spans: spans.map(formatSpan) }, 200);
    },
  );
