/**
 * One trace: where a turn (and the steps of its tool loop) spent its time and where it failed. A summary of
 * the turn, then every span as a waterfall table, in tree order, with its attributes on demand.
 */
import "./trace.css";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { ApiError, api, tenantPath, withQuery } from "../api";
import type { Schema } from "../schemas";
import { useTenantId } from "../tenants";
import { ErrorNote, Loading, PageTitle, ScrollTable, StatusBadge, Time } from "../ui";

type Trace = Schema<"TraceResponse">;
type Span = Schema<"SpanResponse">;

/** A running span's end moves while the reader watches, so the trace is fetched again until all have ended. */
const POLL_MS = 3000;

const integer = new Intl.NumberFormat();

function tracePath(tenantId: string, traceId: string) {
  return tenantPath(tenantId, `traces/${encodeURIComponent(traceId)}`);
}

export function TracePage() {
  const tenantId = useTenantId();
  const traceId = useParams().traceId ?? "";
  const trace = useQuery({
    queryKey: ["tenant", tenantId, "trace", traceId],
    queryFn: () => api<Trace>("GET", tracePath(tenantId, traceId)),
    // Only a running turn can still change; a tool span whose turn ended without it never will.
    refetchInterval: (q) => (q.state.data?.spans.some((s) => s.name === "turn" && s.status === null) ? POLL_MS : false),
    // A missing trace stays missing: asking again three times only delays the answer.
    retry: (count, error) =>
      !(error instanceof ApiError && (error.status === 404 || error.status === 400)) && count < 2,
  });
  return (
    <>
      <PageTitle
        actions={
          trace.isSuccess && trace.data.spans.length > 0 ? (
            // The hub answers OTLP for `?format=otlp`; same origin, so the session cookie goes with it.
            <a
              href={withQuery(tracePath(tenantId, traceId), { format: "otlp" })}
              download={`trace-${traceId}.otlp.json`}
              className="trace-download"
            >
              Download OTLP/JSON
            </a>
          ) : undefined
        }
      >
        Trace <code className="trace-id">{traceId}</code>
      </PageTitle>
      <TraceBody tenantId={tenantId} trace={trace} />
    </>
  );
}

function TraceBody({ tenantId, trace }: { tenantId: string; trace: ReturnType<typeof useQuery<Trace>> }) {
  if (trace.isPending) return <Loading label="Loading the trace" />;
  if (trace.isError) {
    const err = trace.error;
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
      return (
        <div role="alert" className="error-note">
          <strong>Trace not found.</strong> No turn of this tenant has this trace id.{" "}
          <Link to={`/t/${tenantId}/usage`}>See recent traces</Link>
        </div>
      );
    }
    return <ErrorNote error={err} retry={() => trace.refetch()} />;
  }
  if (trace.data.spans.length === 0) return <p className="empty">This trace has no spans yet.</p>;
  return <TraceView tenantId={tenantId} spans={trace.data.spans} />;
}

/**
 * A span with where it sits in the tree and in the trace's time. `orphaned`: it has no end but a span above
 * it ended (a turn aborted mid tool call), so it will never end and is drawn up to that end, not to now.
 */
type Row = {
  span: Span;
  depth: number;
  parent: Span | null;
  offsetMs: number;
  durationMs: number | null;
  orphaned: boolean;
};

/** Children under their parent, siblings in start order; a span whose parent is not here (a caller's) is a root. */
function treeRows(spans: Span[], now: number): { rows: Row[]; start: number; end: number } {
  const start = Math.min(...spans.map((s) => Date.parse(s.startTime)));
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  /** The nearest ended span above `s` (a bounded walk: a malformed cycle must not loop forever). */
  const endedAncestor = (s: Span): Span | null => {
    let p = s.parentSpanId ? byId.get(s.parentSpanId) : undefined;
    for (let i = 0; p && i < spans.length; i++) {
      if (p.endTime) return p;
      p = p.parentSpanId ? byId.get(p.parentSpanId) : undefined;
    }
    return null;
  };
  const endOf = (s: Span) => {
    if (s.endTime) return Date.parse(s.endTime);
    const ended = endedAncestor(s);
    return Math.max(ended?.endTime ? Date.parse(ended.endTime) : now, Date.parse(s.startTime));
  };
  const end = Math.max(...spans.map(endOf));
  const children = new Map<string | null, Span[]>();
  for (const s of spans) {
    const key = s.parentSpanId && byId.has(s.parentSpanId) ? s.parentSpanId : null;
    children.set(key, [...(children.get(key) ?? []), s]);
  }
  const rows: Row[] = [];
  const seen = new Set<string>();
  const walk = (parentId: string | null, depth: number) => {
    const kids = [...(children.get(parentId) ?? [])].sort((a, b) => Date.parse(a.startTime) - Date.parse(b.startTime));
    for (const span of kids) {
      if (seen.has(span.spanId)) continue; // a malformed cycle must not loop forever
      seen.add(span.spanId);
      rows.push({
        span,
        depth,
        parent: parentId ? (byId.get(parentId) ?? null) : null,
        offsetMs: Date.parse(span.startTime) - start,
        durationMs: span.durationMs ?? (span.endTime ? null : endOf(span) - Date.parse(span.startTime)),
        orphaned: !span.endTime && endedAncestor(span) !== null,
      });
      walk(span.spanId, depth + 1);
    }
  };
  walk(null, 0);
  return { rows, start, end };
}

function formatMs(ms: number | null): string {
  if (ms === null) return "—";
  return ms < 1000 ? `${integer.format(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** The trace's status: failed if any turn failed, running while one runs. */
function overallStatus(turns: Span[]): "ok" | "error" | "running" {
  if (turns.some((t) => t.status === "error")) return "error";
  if (turns.some((t) => t.status === null)) return "running";
  return "ok";
}

function TraceView({ tenantId, spans }: { tenantId: string; spans: Span[] }) {
  const { rows, start, end } = treeRows(spans, Date.now());
  return (
    <>
      <Summary tenantId={tenantId} spans={spans} start={start} end={end} />
      <section aria-labelledby="trace-spans">
        <h2 id="trace-spans">Spans</h2>
        <ScrollTable label="Spans">
          <table className="trace-waterfall">
            <thead>
              <tr>
                <th scope="col">Span</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Start
                </th>
                <th scope="col" className="num">
                  Duration
                </th>
                <th scope="col" className="trace-timeline-col">
                  Timeline
                </th>
                <th scope="col">Attributes</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <SpanRow key={row.span.spanId} row={row} total={Math.max(end - start, 1)} />
              ))}
            </tbody>
          </table>
        </ScrollTable>
      </section>
    </>
  );
}

function Summary({ tenantId, spans, start, end }: { tenantId: string; spans: Span[]; start: number; end: number }) {
  const turns = spans.filter((s) => s.name === "turn");
  const status = overallStatus(turns.length > 0 ? turns : spans);
  const failed = spans.filter((s) => s.status === "error");
  const agentIds = [...new Set(spans.map((s) => s.agentId))];
  const instanceIds = [...new Set(spans.map((s) => s.instanceId))];
  return (
    <section aria-labelledby="trace-summary" className="trace-summary">
      <h2 id="trace-summary">Summary</h2>
      <dl>
        <div>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={status} />
            {failed.length > 0 && (
              <small>
                {" "}
                {failed.length} failed span{failed.length === 1 ? "" : "s"}: {failed[0]?.name}
                {failed[0]?.statusMessage ? ` — ${failed[0].statusMessage}` : ""}
              </small>
            )}
          </dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>
            {formatMs(end - start)}
            {status === "running" && " so far"}
          </dd>
        </div>
        <div>
          <dt>Agent</dt>
          <dd>
            <IdLinks ids={agentIds} to={(id) => `/t/${tenantId}/agents/${id}`} />
          </dd>
        </div>
        <div>
          <dt>Instance</dt>
          <dd>
            <IdLinks ids={instanceIds} to={(id) => `/t/${tenantId}/instances/${id}`} />
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>
            <Time at={new Date(start).toISOString()} />
          </dd>
        </div>
        <div>
          <dt>Turns / spans</dt>
          <dd>
            {turns.length} / {spans.length}
          </dd>
        </div>
      </dl>
    </section>
  );
}

function SpanRow({ row, total }: { row: Row; total: number }) {
  const { span, depth, parent, offsetMs, durationMs, orphaned } = row;
  const failed = span.status === "error";
  const left = (offsetMs / total) * 100;
  // A span too short to see still gets a sliver, so the reader finds where it is.
  const width = Math.max(((durationMs ?? 0) / total) * 100, 0.5);
  return (
    <tr className={failed ? "trace-row-error" : undefined}>
      <th scope="row" className="trace-name" style={{ paddingLeft: `${0.5 + depth * 1.25}rem` }}>
        {depth > 0 && (
          <span className="trace-branch" aria-hidden="true">
            └{" "}
          </span>
        )}
        <code>{span.name}</code>
        {parent && <span className="visually-hidden">, inside {parent.name}</span>}
      </th>
      <td>
        <StatusBadge status={span.status ?? (orphaned ? "unfinished" : "running")} />
        {failed && span.statusMessage && <p className="trace-message">{span.statusMessage}</p>}
      </td>
      <td className="num">+{formatMs(offsetMs)}</td>
      <td className="num">
        {orphaned ? "never ended" : formatMs(durationMs)}
        {span.status === null && !orphaned && " (running)"}
      </td>
      <td className="trace-timeline-col">
        <div className="trace-track" aria-hidden="true">
          <div
            className={`trace-bar${failed ? " trace-bar-error" : ""}${span.status === null ? " trace-bar-open" : ""}`}
            style={{ left: `${Math.min(left, 99.5)}%`, width: `${Math.min(width, 100 - Math.min(left, 99.5))}%` }}
          />
        </div>
      </td>
      <td>
        <details className="trace-attrs">
          <summary>
            {Object.keys(span.attributes).length} attributes
            <span className="visually-hidden">
              {" "}
              of {span.name}, span {span.spanId}
            </span>
          </summary>
          <dl>
            <Attr term="span.id" value={span.spanId} />
            <Attr term="parent.span.id" value={span.parentSpanId ?? "—"} />
            <Attr term="span.kind" value={span.kind} />
            {Object.entries(span.attributes).map(([k, v]) => (
              <Attr key={k} term={k} value={String(v)} />
            ))}
          </dl>
        </details>
      </td>
    </tr>
  );
}

function Attr({ term, value }: { term: string; value: string }) {
  return (
    <div>
      <dt>
        <code>{term}</code>
      </dt>
      <dd>{value}</dd>
    </div>
  );
}

/** Ids as links, comma-separated: a trace can span several agents' or instances' turns. */
function IdLinks({ ids, to }: { ids: string[]; to: (id: string) => string }) {
  return ids.map((id, i) => (
    <span key={id}>
      {i > 0 && ", "}
      <Link to={to(id)}>
        <code>{id}</code>
      </Link>
    </span>
  ));
}
