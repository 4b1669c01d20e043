/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) carried from a user's mail into the turn it
 * starts: the `traceparent` header of `POST …/mail` is kept in the instance's storage, and the next turn
 * that starts (not a step of a tool loop already running) takes it — its trace id becomes the turn's, the
 * caller's span id its span's parent. A malformed header is ignored, as the specification says a
 * receiver does: the turn then starts a trace of its own.
 */

export type TraceContext = { traceId: string; parentSpanId: string | null };

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const STORAGE_KEY = "traceContext";

/** The trace id and parent span of a valid `traceparent`, else null. */
export function parseTraceparent(header: string | null | undefined): TraceContext | null {
  if (!header) return null;
  const match = TRACEPARENT.exec(header.trim());
  if (!match) return null;
  const [, version, traceId = "", parentSpanId = "", , rest] = match;
  // Version ff is invalid; version 00 has exactly four fields (a later version may append more).
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentSpanId)) return null;
  return { traceId, parentSpanId };
}

/** The context of the last user mail, for the next turn; null forgets an earlier one. */
export async function keepTraceContext(storage: DurableObjectStorage, context: TraceContext | null): Promise<void> {
  if (context) await storage.put(STORAGE_KEY, context);
  else await storage.delete(STORAGE_KEY);
}

/** Takes (and forgets) the kept context. */
export async function takeTraceContext(storage: DurableObjectStorage): Promise<TraceContext | null> {
  const context = await storage.get<TraceContext>(STORAGE_KEY);
  if (context) await storage.delete(STORAGE_KEY);
  return context ?? null;
}
