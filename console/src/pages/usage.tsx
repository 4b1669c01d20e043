/** The tenant's (or one agent's) usage over a time range: totals, three charts, and the latest turns' traces. */
import "./usage.css";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { type ReactNode, useId, useState } from "react";
import { Link } from "react-router";
import { api, type Page, tenantPath, withQuery } from "../api";
import { formatMoney } from "../decimal";
import type { Schema } from "../schemas";
import { useAgents, useWallets } from "../tenant-lists";
import { useTenantId } from "../tenants";
import { PageTitle, QueryView, ScrollTable, Time } from "../ui";
import { CostChart, formatMs, LatencyChart, type TokenKind, TokensChart, tokenKinds, toRows } from "../usage/charts";
import { type Bucket, isRangeKey, type RangeKey, ranges, windowOf } from "../usage/range";

type Metrics = Schema<"MetricsResponse">;
type Span = Schema<"SpanResponse">;

/** Turns finish by themselves, so their cost and tokens arrive without the reader doing anything. */
const POLL_MS = 5000;

const integer = new Intl.NumberFormat();
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

export function UsagePage() {
  const tenantId = useTenantId();
  const [range, setRange] = useState<RangeKey>("24h");
  const [agentId, setAgentId] = useState("");
  const metrics = useMetrics(tenantId, range, agentId);
  const currency = useCostCurrency(tenantId);
  return (
    <>
      <PageTitle>Usage</PageTitle>
      <Filters tenantId={tenantId} range={range} onRange={setRange} agentId={agentId} onAgent={setAgentId} />
      <div aria-busy={metrics.isPlaceholderData || undefined}>
        <QueryView
          query={metrics}
          label="Loading usage"
          isEmpty={(m) => m.turns === 0 && m.messageCount === 0 && m.tokenUsage.total === 0}
          empty="No usage in this range yet."
        >
          {(m) => (
            <UsageView metrics={m} bucket={ranges[range].bucket} rangeLabel={ranges[range].label} currency={currency} />
          )}
        </QueryView>
      </div>
      <RecentTraces tenantId={tenantId} range={range} agentId={agentId} />
    </>
  );
}

function useMetrics(tenantId: string, range: RangeKey, agentId: string) {
  return useQuery({
    queryKey: ["tenant", tenantId, "metrics", agentId || "all", range],
    queryFn: () => {
      // The window is recomputed on every poll so that "the last hour" keeps moving with the clock.
      const path = agentId
        ? tenantPath(tenantId, `agents/${encodeURIComponent(agentId)}/metrics`)
        : tenantPath(tenantId, "metrics");
      return api<Metrics>("GET", withQuery(path, windowOf(range)));
    },
    refetchInterval: POLL_MS,
    // Switching range or agent keeps the last numbers on screen (marked busy) instead of a blank.
    placeholderData: keepPreviousData,
  });
}

/**
 * Metrics give the cost as a bare number "in the wallets' currency": the default wallet's currency names it.
 * Without a readable wallet the cost is shown without one.
 */
function useCostCurrency(tenantId: string): string | undefined {
  const wallets = useWallets(tenantId);
  const list = wallets.data?.data ?? [];
  return (list.find((w) => w.isDefault) ?? list[0])?.currency;
}

function Filters({
  tenantId,
  range,
  onRange,
  agentId,
  onAgent,
}: {
  tenantId: string;
  range: RangeKey;
  onRange: (r: RangeKey) => void;
  agentId: string;
  onAgent: (id: string) => void;
}) {
  const agents = useAgents(tenantId);
  return (
    <div className="grid usage-filters">
      <label>
        Range
        <select value={range} onChange={(e) => isRangeKey(e.target.value) && onRange(e.target.value)}>
          {Object.entries(ranges).map(([key, r]) => (
            <option key={key} value={key}>
              {r.label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Agent
        <select
          value={agentId}
          onChange={(e) => onAgent(e.target.value)}
          aria-describedby={agents.isError ? "agents-error" : undefined}
        >
          <option value="">All agents</option>
          {agents.data?.data.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
        {agents.isError && (
          <small id="agents-error" role="alert">
            The agents could not be listed: {agents.error.message}
          </small>
        )}
      </label>
    </div>
  );
}

function UsageView({
  metrics,
  bucket,
  rangeLabel,
  currency,
}: {
  metrics: Metrics;
  bucket: Bucket;
  rangeLabel: string;
  currency: string | undefined;
}) {
  const rows = toRows(metrics.series ?? []);
  const range = rangeLabel.toLowerCase();
  // Input and output always show; the rarer kinds only when they were used, to keep the legend short.
  const kinds: TokenKind[] = tokenKinds
    .map(([k]) => k)
    .filter((k) => k === "input" || k === "output" || metrics.tokenUsage[k] > 0);
  const noCost = !/[1-9]/.test(metrics.cost);
  return (
    <>
      <Totals metrics={metrics} currency={currency} />
      <section aria-labelledby="chart-tokens" className="chart-section">
        <h2 id="chart-tokens">Tokens</h2>
        <TokensChart
          rows={rows}
          bucket={bucket}
          kinds={kinds}
          label={`Tokens by kind per ${bucket}, ${range}, stacked bars`}
        />
      </section>
      <section aria-labelledby="chart-cost" className="chart-section">
        <h2 id="chart-cost">Cost</h2>
        {noCost && <p className="empty">No cost in this range: the models used may have no price.</p>}
        <CostChart rows={rows} bucket={bucket} currency={currency} label={`Cost per ${bucket}, ${range}, bars`} />
      </section>
      <section aria-labelledby="chart-latency" className="chart-section">
        <h2 id="chart-latency">Latency</h2>
        <LatencyChart rows={rows} bucket={bucket} label={`Turn latency p50 and p95 per ${bucket}, ${range}, lines`} />
      </section>
    </>
  );
}

function Totals({ metrics: m, currency }: { metrics: Metrics; currency: string | undefined }) {
  const headingId = useId();
  const t = m.tokenUsage;
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>Totals</h2>
      <dl className="usage-totals">
        <Stat term="Messages">
          {integer.format(m.messageCount)}{" "}
          <small>
            ({integer.format(m.messages.inbound)} in, {integer.format(m.messages.outbound)} out)
          </small>
        </Stat>
        <Stat term="Turns">
          {integer.format(m.turns)} <small>({integer.format(m.failedTurns)} failed)</small>
        </Stat>
        <Stat term="Error rate">{percent.format(m.errorRate)}</Stat>
        <Stat term="Cost">
          <span data-testid="total-cost">{formatMoney(m.cost, currency)}</span>
        </Stat>
        <Stat term="Tokens">
          {integer.format(t.total)}{" "}
          <small>
            (
            {tokenKinds
              .filter(([k]) => k === "input" || k === "output" || t[k] > 0)
              .map(([k, name]) => `${name.toLowerCase()} ${integer.format(t[k])}`)
              .join(", ")}
            )
          </small>
        </Stat>
        <Stat term="Latency p50">{formatMs(m.latencyMs.p50)}</Stat>
        <Stat term="Latency p95">{formatMs(m.latencyMs.p95)}</Stat>
      </dl>
    </section>
  );
}

function Stat({ term, children }: { term: string; children: ReactNode }) {
  return (
    <div>
      <dt>{term}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function RecentTraces({ tenantId, range, agentId }: { tenantId: string; range: RangeKey; agentId: string }) {
  const traces = useQuery({
    queryKey: ["tenant", tenantId, "traces", agentId || "all", range],
    queryFn: () =>
      api<Page<Span>>(
        "GET",
        withQuery(tenantPath(tenantId, "traces"), {
          limit: 20,
          agentId: agentId || undefined,
          startTime: windowOf(range).from,
        }),
      ),
    refetchInterval: POLL_MS,
    placeholderData: keepPreviousData,
  });
  return (
    <section aria-labelledby="recent-traces">
      <h2 id="recent-traces">Recent traces</h2>
      <QueryView
        query={traces}
        label="Loading traces"
        isEmpty={(page) => page.data.length === 0}
        empty="No turns in this range yet."
      >
        {(page) => <TraceTable tenantId={tenantId} spans={page.data} />}
      </QueryView>
    </section>
  );
}

function TraceTable({ tenantId, spans }: { tenantId: string; spans: Span[] }) {
  return (
    <ScrollTable label="Recent traces">
      <table className="traces">
        <thead>
          <tr>
            <th scope="col">Trace</th>
            <th scope="col">Turn</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">
              Duration
            </th>
            <th scope="col">Start</th>
          </tr>
        </thead>
        <tbody>
          {spans.map((s) => (
            <tr key={s.spanId}>
              <td>
                <Link to={`/t/${tenantId}/traces/${s.traceId}`}>
                  <code>{s.traceId}</code>
                </Link>
              </td>
              <td>
                <code>{s.turnId}</code>
              </td>
              <td>
                {s.status === "error" ? (
                  <strong className="status-error">Error</strong>
                ) : s.status === "ok" ? (
                  "OK"
                ) : (
                  "Running"
                )}
                {s.status === "error" && s.statusMessage && <small> {s.statusMessage}</small>}
              </td>
              <td className="num">{formatMs(s.durationMs)}</td>
              <td>
                <Time at={s.startTime} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollTable>
  );
}
