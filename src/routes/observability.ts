/**
 * Observability: usage metrics of the tenant and of one agent over a time range (docs/observability.md).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { findAgent } from "../catalog/agents";
import { getDb } from "../db/client";
import { badRequest } from "../errors";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import { errors, jsonBody, pathParam, TenantParams, Timestamp } from "../http/responses";
import { createRouter } from "../http/router";
import { usageMetrics } from "../runtime/metrics";

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
      request: {
        params: TenantParams.extend({ agentId: pathParam("agentId", "agt_0123456789abcdef0123456789abcdef") }),
        query: MetricsQuery,
      },
      responses: { 200: jsonBody(MetricsSchema, "The metrics"), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(await metrics(c.env, c.get("tenant").id, c.req.valid("param").agentId, c.req.valid("query")), 200),
  );
