/**
 * Usage metrics of a tenant or one agent over a time range, computed by the database from the turns and
 * mail it recorded (never by loading rows into the Worker): messages, tokens by kind, cost, turn latency
 * (mean, p50, p95) and the share of turns that failed, in total and per time bucket.
 */
import type { Db } from "../db/client";

export type MetricsQuery = {
  tenantId: string;
  agentId: string | null;
  /** Inclusive start and exclusive end, ms. */
  from: number;
  to: number;
  /** Bucket width in ms for the series; null for totals only. */
  bucketMs: number | null;
};

export type Totals = {
  messageCount: number;
  messages: { inbound: number; outbound: number };
  turns: number;
  failedTurns: number;
  errorRate: number;
  tokenUsage: { input: number; output: number; cacheRead: number; cacheWrite: number; thinking: number; total: number };
  /** Sum of the turns' costs, as a decimal string (to 9 places). */
  cost: string;
  latencyMs: { avg: number | null; p50: number | null; p95: number | null };
};

export type Bucket = Totals & { start: string };

type Row = {
  bucket: number | null;
  turns: number;
  failed: number | null;
  input: number | null;
  output: number | null;
  cache_read: number | null;
  cache_write: number | null;
  thinking: number | null;
  cost: number | null;
  avg_latency: number | null;
};

type MailRow = { bucket: number | null; inbound: number; outbound: number };
type LatencyRow = { bucket: number | null; p50: number | null; p95: number | null };

/** Turns of the tenant (or agent) that started in the range, with their bucket. */
const TURNS = `
  select t.*, (t.ended_at - t.started_at) as latency,
         case when ?5 is null then null else cast((t.started_at - ?3) / ?5 as integer) end as bucket
  from inference_turn t join agent_instance i on i.id = t.instance_id
  where t.tenant_id = ?1 and (?2 is null or i.agent_id = ?2) and t.started_at >= ?3 and t.started_at < ?4`;

const MAIL = `
  select case when ?5 is null then null else cast((m.created_at - ?3) / ?5 as integer) end as bucket,
         sum(m.direction = 'inbound') as inbound, sum(m.direction = 'outbound') as outbound
  from session_mail m join agent_instance i on i.id = m.instance_id
  where m.tenant_id = ?1 and (?2 is null or i.agent_id = ?2) and m.created_at >= ?3 and m.created_at < ?4
  group by bucket`;

/** Percentiles by rank within each bucket (nearest rank), with window functions. */
const LATENCY = `
  with ranked as (
    select bucket, latency,
           row_number() over (partition by bucket order by latency) as n,
           count(*) over (partition by bucket) as total
    from (${TURNS}) where latency is not null)
  select bucket,
         max(case when n = max(1, (total * 50 + 99) / 100) then latency end) as p50,
         max(case when n = max(1, (total * 95 + 99) / 100) then latency end) as p95
  from ranked group by bucket`;

const AGGREGATE = `
  select bucket, count(*) as turns, sum(status = 'failed') as failed,
         sum(input_tokens) as input, sum(output_tokens) as output, sum(cache_read_tokens) as cache_read,
         sum(cache_write_tokens) as cache_write, sum(thinking_tokens) as thinking,
         sum(cast(cost as real)) as cost, avg(latency) as avg_latency
  from (${TURNS}) group by bucket`;

function totalsOf(row: Row | undefined, mail: MailRow | undefined, latency: LatencyRow | undefined): Totals {
  const turns = row?.turns ?? 0;
  const failed = row?.failed ?? 0;
  const usage = {
    input: row?.input ?? 0,
    output: row?.output ?? 0,
    cacheRead: row?.cache_read ?? 0,
    cacheWrite: row?.cache_write ?? 0,
    thinking: row?.thinking ?? 0,
  };
  const inbound = mail?.inbound ?? 0;
  const outbound = mail?.outbound ?? 0;
  return {
    messageCount: inbound + outbound,
    messages: { inbound, outbound },
    turns,
    failedTurns: failed,
    errorRate: turns === 0 ? 0 : failed / turns,
    tokenUsage: { ...usage, total: usage.input + usage.output + usage.cacheRead + usage.cacheWrite + usage.thinking },
    cost: (row?.cost ?? 0).toFixed(9).replace(/\.?0+$/, "") || "0",
    latencyMs: {
      avg: row?.avg_latency === null || row?.avg_latency === undefined ? null : Math.round(row.avg_latency),
      p50: latency?.p50 ?? null,
      p95: latency?.p95 ?? null,
    },
  };
}

/** Totals over the range, and the series per bucket when asked (empty buckets included). */
export async function usageMetrics(db: Db, query: MetricsQuery): Promise<{ totals: Totals; series: Bucket[] | null }> {
  const d1 = db.$client;
  const params = (bucketMs: number | null) => [query.tenantId, query.agentId, query.from, query.to, bucketMs];
  const statements = [
    d1.prepare(AGGREGATE).bind(...params(null)),
    d1.prepare(MAIL).bind(...params(null)),
    d1.prepare(LATENCY).bind(...params(null)),
  ];
  if (query.bucketMs) {
    statements.push(
      d1.prepare(AGGREGATE).bind(...params(query.bucketMs)),
      d1.prepare(MAIL).bind(...params(query.bucketMs)),
      d1.prepare(LATENCY).bind(...params(query.bucketMs)),
    );
  }
  const results = await d1.batch(statements);
  const rows = <T>(i: number) => (results[i]?.results ?? []) as T[];
  const totals = totalsOf(rows<Row>(0)[0], rows<MailRow>(1)[0], rows<LatencyRow>(2)[0]);
  if (!query.bucketMs) return { totals, series: null };
  const byBucket = <T extends { bucket: number | null }>(list: T[]) => new Map(list.map((r) => [r.bucket ?? 0, r]));
  const turns = byBucket(rows<Row>(3));
  const mail = byBucket(rows<MailRow>(4));
  const latency = byBucket(rows<LatencyRow>(5));
  const count = Math.ceil((query.to - query.from) / query.bucketMs);
  const series: Bucket[] = [];
  for (let i = 0; i < count; i++) {
    series.push({
      start: new Date(query.from + i * query.bucketMs).toISOString(),
      ...totalsOf(turns.get(i), mail.get(i), latency.get(i)),
    });
  }
  return { totals, series };
}
