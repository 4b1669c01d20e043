/**
 * Traces of turns (docs/observability.md, "Traces"), built from the recorded turns and the times their
 * parts arrived: each turn is a span, with a child span per model call (`step-start` to `step-finish` or
 * the call's error) and per tool call (the call in `inference.done` to its result in `tool.done`). The
 * steps of one tool loop share a trace; a turn started by a mail with a `traceparent` is in the caller's.
 *
 * Span ids are derived from the row ids (the first 16 hex digits of the turn's or the part's id), so a
 * trace reads the same every time without storing ids of its own.
 */
import { and, asc, eq, gte, isNotNull, lt } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { agentInstance, inferenceTurn, turnPart } from "../db/schema";
import { notFound } from "../errors";

/** A trace holds at most this many turns (a caller may reuse its trace id for many messages). */
export const MAX_TRACE_TURNS = 100;

type TurnRow = typeof inferenceTurn.$inferSelect;
type PartRow = typeof turnPart.$inferSelect;
type AttributeValue = string | number | boolean;

export type Span = {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  /** `client` for a model call (a request to the provider), `internal` for the rest. */
  kind: "internal" | "client";
  agentId: string;
  instanceId: string;
  turnId: string;
  startTime: Date;
  /** Null while the span has not ended. */
  endTime: Date | null;
  /** Null while unknown (running, or nothing said how it went). */
  status: "ok" | "error" | null;
  statusMessage: string | null;
  attributes: Record<string, AttributeValue>;
};

export type TraceQuery = PageQuery & {
  agentId?: string | undefined;
  instanceId?: string | undefined;
  sessionId?: string | undefined;
  traceId?: string | undefined;
  /** On the turn's start: inclusive start and exclusive end, ms. */
  startTime?: number | undefined;
  endTime?: number | undefined;
};

const withAgent = { turn: inferenceTurn, agentId: agentInstance.agentId };

/** One page of the tenant's turns with their traces, newest first: each is one turn's root span. */
export async function listTraces(db: Db, tenantId: string, query: TraceQuery) {
  const page = await paginate(
    query,
    { time: inferenceTurn.startedAt, id: inferenceTurn.id },
    (keyset, orderBy, limit) =>
      db
        .select(withAgent)
        .from(inferenceTurn)
        .innerJoin(agentInstance, eq(agentInstance.id, inferenceTurn.instanceId))
        .where(
          and(
            eq(inferenceTurn.tenantId, tenantId),
            isNotNull(inferenceTurn.traceId),
            query.agentId ? eq(agentInstance.agentId, query.agentId) : undefined,
            query.instanceId ? eq(inferenceTurn.instanceId, query.instanceId) : undefined,
            query.sessionId ? eq(inferenceTurn.sessionId, query.sessionId) : undefined,
            query.traceId ? eq(inferenceTurn.traceId, query.traceId) : undefined,
            query.startTime !== undefined ? gte(inferenceTurn.startedAt, new Date(query.startTime)) : undefined,
            query.endTime !== undefined ? lt(inferenceTurn.startedAt, new Date(query.endTime)) : undefined,
            keyset,
          ),
        )
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.turn.startedAt.getTime(), id: row.turn.id }),
  );
  return { data: page.data.map((row) => turnSpan(row.turn, row.agentId)), nextCursor: page.nextCursor };
}

/** Every span of a trace of the tenant (its first `MAX_TRACE_TURNS` turns), in start order; 404 if none. */
export async function getTrace(db: Db, tenantId: string, traceId: string): Promise<Span[]> {
  const inTrace = and(eq(inferenceTurn.tenantId, tenantId), eq(inferenceTurn.traceId, traceId));
  const [turns, parts] = await db.batch([
    db
      .select(withAgent)
      .from(inferenceTurn)
      .innerJoin(agentInstance, eq(agentInstance.id, inferenceTurn.instanceId))
      .where(inTrace)
      .orderBy(asc(inferenceTurn.startedAt), asc(inferenceTurn.id))
      .limit(MAX_TRACE_TURNS),
    db
      .select({ part: turnPart })
      .from(turnPart)
      .innerJoin(inferenceTurn, eq(inferenceTurn.id, turnPart.turnId))
      .where(inTrace)
      .orderBy(asc(turnPart.turnId), asc(turnPart.ordinal)),
  ]);
  if (turns.length === 0) throw notFound("Trace not found");
  const byTurn = new Map<string, PartRow[]>();
  for (const { part } of parts) byTurn.set(part.turnId, [...(byTurn.get(part.turnId) ?? []), part]);
  const spans = turns.flatMap(({ turn, agentId }) => {
    const root = turnSpan(turn, agentId);
    const children = childSpans(turn, agentId, byTurn.get(turn.id) ?? []);
    if (root.status === "error") root.statusMessage = children.errors.join("; ") || null;
    return [root, ...children.spans];
  });
  return spans.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

const spanIdOf = (id: string) => id.slice(id.indexOf("_") + 1).slice(0, 16);

function turnSpan(turn: TurnRow, agentId: string): Span {
  const failure = turn.status === "failed";
  return {
    traceId: turn.traceId ?? turn.id.slice(4),
    spanId: spanIdOf(turn.id),
    parentSpanId: turn.parentSpanId,
    name: "turn",
    kind: "internal",
    agentId,
    instanceId: turn.instanceId,
    turnId: turn.id,
    startTime: turn.startedAt,
    endTime: turn.endedAt,
    status: turn.status === "running" ? null : failure ? "error" : "ok",
    statusMessage: null,
    attributes: {
      "agent.id": agentId,
      "agent.instance.id": turn.instanceId,
      "agent.session.id": turn.sessionId,
      "agent.turn.id": turn.id,
      "agent.turn.status": turn.status,
      "agent.turn.cost": turn.cost,
      "gen_ai.request.model": turn.model,
    },
  };
}

/** The model calls and tool calls of a turn, from its parts in order, and the turn's errors. */
function childSpans(turn: TurnRow, agentId: string, parts: PartRow[]): { spans: Span[]; errors: string[] } {
  const base = { traceId: turn.traceId ?? turn.id.slice(4), agentId, instanceId: turn.instanceId, turnId: turn.id };
  const parentSpanId = spanIdOf(turn.id);
  // Parts recorded before parts had times fall back to the turn's.
  const at = (part: PartRow) => part.createdAt ?? turn.startedAt;
  const spans: Span[] = [];
  const errors: string[] = [];
  let call: Span | null = null;
  const tools = new Map<string, Span>();
  const endCall = (end: Date, status: "ok" | "error", message: string | null) => {
    if (!call) return;
    Object.assign(call, { endTime: end, status, statusMessage: message });
    call = null;
  };
  for (const part of parts) {
    const meta = part.metadata ?? {};
    if (part.type === "step-start") {
      endCall(at(part), "ok", null);
      const model = typeof meta.model === "string" ? meta.model : turn.model;
      call = {
        ...base,
        spanId: spanIdOf(part.id),
        parentSpanId,
        name: `chat ${model}`,
        kind: "client",
        startTime: at(part),
        endTime: null,
        status: null,
        statusMessage: null,
        attributes: {
          "gen_ai.operation.name": "chat",
          "gen_ai.request.model": model,
          "gen_ai.usage.input_tokens": turn.inputTokens,
          "gen_ai.usage.output_tokens": turn.outputTokens,
          "agent.usage.cache_read_tokens": turn.cacheReadTokens,
          "agent.usage.cache_write_tokens": turn.cacheWriteTokens,
          "agent.usage.thinking_tokens": turn.thinkingTokens,
        },
      };
      spans.push(call);
    } else if (part.type === "step-finish") {
      endCall(at(part), "ok", null);
    } else if (part.type === "error") {
      const message = `${typeof meta.category === "string" ? `${meta.category}: ` : ""}${part.content ?? ""}`;
      errors.push(message);
      endCall(at(part), "error", message);
    } else if (part.type === "tool" && meta.kind === "call" && typeof meta.callId === "string") {
      const name = typeof meta.name === "string" ? meta.name : "unknown";
      const tool: Span = {
        ...base,
        spanId: spanIdOf(part.id),
        parentSpanId,
        name: `execute_tool ${name}`,
        kind: "internal",
        startTime: at(part),
        endTime: null,
        status: null,
        statusMessage: null,
        attributes: {
          "gen_ai.operation.name": "execute_tool",
          "gen_ai.tool.name": name,
          "gen_ai.tool.call.id": meta.callId,
        },
      };
      tools.set(meta.callId, tool);
      spans.push(tool);
    } else if (part.type === "tool" && meta.kind === "result" && typeof meta.callId === "string") {
      const tool = tools.get(meta.callId);
      if (tool && !tool.endTime) {
        const failed = meta.isError === true;
        Object.assign(tool, { endTime: at(part), status: failed ? "error" : "ok" });
        if (failed) tool.statusMessage = typeof meta.content === "string" ? meta.content.slice(0, 500) : null;
      }
    }
  }
  // A call still open when the turn ended went as the turn did.
  if (call && turn.endedAt) endCall(turn.endedAt, turn.status === "failed" ? "error" : "ok", null);
  return { spans, errors };
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding)
// ---------------------------------------------------------------------------------------------

type OtlpValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };
export type OtlpAttribute = { key: string; value: OtlpValue };

/** OTLP's enums, as the JSON encoding writes them (integers). */
const SPAN_KIND = { internal: 1, client: 3 } as const;
const STATUS_CODE = { ok: 1, error: 2 } as const;

function otlpValue(value: AttributeValue): OtlpValue {
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  // 64-bit integers are strings in OTLP/JSON.
  return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value };
}

const attributes = (record: Record<string, AttributeValue>): OtlpAttribute[] =>
  Object.entries(record).map(([key, value]) => ({ key, value: otlpValue(value) }));

/** Unix time in nanoseconds, as the decimal string OTLP/JSON wants for a fixed64. */
const nanos = (date: Date) => (BigInt(date.getTime()) * 1_000_000n).toString();

/**
 * The spans as one OTLP/JSON `ExportTraceServiceRequest`: ids in lowercase hex, times in unix nanoseconds
 * (strings), enums as integers. A span that has not ended has no `endTimeUnixNano`.
 */
export function toOtlp(spans: readonly Span[], service = { name: "agent-hub", version: "0.1.0" }) {
  return {
    resourceSpans: [
      {
        resource: { attributes: attributes({ "service.name": service.name, "service.version": service.version }) },
        scopeSpans: [
          {
            scope: { name: "agent-hub.turns", version: service.version },
            spans: spans.map((span) => ({
              traceId: span.traceId,
              spanId: span.spanId,
              ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
              name: span.name,
              kind: SPAN_KIND[span.kind],
              startTimeUnixNano: nanos(span.startTime),
              ...(span.endTime ? { endTimeUnixNano: nanos(span.endTime) } : {}),
              attributes: attributes(span.attributes),
              status: span.status
                ? { code: STATUS_CODE[span.status], ...(span.statusMessage ? { message: span.statusMessage } : {}) }
                : {},
            })),
          },
        ],
      },
    ],
  };
}
