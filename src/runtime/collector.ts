/**
 * The event collector: turns one instance's inference events into `inference_turn` and `turn_part` rows,
 * derives the runtime status and produces the `turn.committed` summary.
 *
 * The state is plain JSON so the instance's Durable Object can keep it in its storage between events
 * (it may be evicted at any time). `apply` computes the next state on a copy, writes the event's rows in
 * one `db.batch`, and only then adopts the new state: a failed write leaves the collector where it was.
 */
import { eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../db/client";
import { inferenceTurn, turnPart, type turnPartTypes } from "../db/schema";
import { newId } from "../lib/ids";
import type { InferenceEvent, TokenUsage } from "./protocol";
import type { TraceContext } from "./trace-context";

export type RuntimeStatus = "idle" | "busy" | "waiting_approval";

export type TurnError = { category: string; message: string };
export type TurnToolCall = { name: string; arguments: unknown; result: string; isError: boolean };
export type TurnToolError = { name: string; content: string };

/** The summary of a finished turn; the hub records it as a `turn.committed` event. */
export type TurnCommitted = {
  turnId: string;
  status: "completed" | "failed";
  /** The turn's text blocks (never thinking). */
  text: string;
  hadReply: boolean;
  hadError: boolean;
  errors: TurnError[];
  toolCalls: TurnToolCall[];
  toolErrors: TurnToolError[];
};

export type CollectorState = {
  version: 1;
  instanceId: string;
  sessionId: string;
  tenantId: string;
  status: RuntimeStatus;
  /** Set after a terminal event (`reactor.done`, fatal `reactor.error`): later events are ignored. */
  ended: boolean;
  turnId: string | null;
  lastTurnId: string | null;
  /** The last turn was finalized and no new one has started. */
  finalized: boolean;
  ordinal: number;
  /** Text blocks persisted for the current (or last) turn. */
  text: string;
  /** Deltas of the step in flight; never persisted. */
  streamingText: string;
  hadError: boolean;
  /** The open turn's model call failed (`inference.error`). */
  pendingError: boolean;
  errors: TurnError[];
  /** Tool calls of the turn by call id, from `inference.done`, to name the results. */
  calls: Record<string, { name: string; arguments: unknown }>;
  toolCalls: TurnToolCall[];
  toolErrors: TurnToolError[];
  /** The model call in flight: its usage as last reported (cumulative); absent in states saved before. */
  callUsage?: TokenUsage;
  /** The open turn's model call has ended (done, failed) and its usage is settled: later reports change nothing. */
  callSettled?: boolean;
  /** The model the call's `inference.start` named. */
  callModel?: string;
  /** The trace of the current turn and of the later steps of its tool loop; absent in states saved before. */
  trace?: TraceContext;
};

/** The usage of one model call (one turn), settled once when the call ends: what metering charges. */
export type SettledUsage = { turnId: string; model: string; source: string | null; usage: TokenUsage };

export type ApplyResult = {
  status: RuntimeStatus;
  statusChanged: boolean;
  /** Set when the event finalized a turn (everything but `abandon`). */
  committed: TurnCommitted | null;
  /** Whether rows were written to D1: the saved state must then be brought up to date at once. */
  wrote: boolean;
  /** Set when the event ended a model call: its usage, recorded on the turn, to charge. */
  settled: SettledUsage | null;
};

type Statement = BatchItem<"sqlite">;
type PartType = (typeof turnPartTypes)[number];

/** Event types that change the collector's state or rows; others pass it by untouched. */
export const COLLECTED_EVENT_TYPES: ReadonlySet<string> = new Set([
  "inference.start",
  "inference.text.delta",
  "inference.usage",
  "inference.done",
  "inference.error",
  "tool.done",
  "connector.reply",
  "reactor.done",
  "reactor.error",
  "reactor.gate.blocked",
  "reactor.gate.cleared",
]);

/**
 * The runtime status after `event`: busy when inference starts or a gate clears, `waiting_approval` while
 * a gate waits for approval, idle after a reply, `reactor.done` or a fatal error; otherwise unchanged.
 */
export function deriveStatus(current: RuntimeStatus, event: Pick<InferenceEvent, "type" | "data">): RuntimeStatus {
  const data = isRecord(event.data) ? event.data : {};
  switch (event.type) {
    case "inference.start":
      return "busy";
    case "connector.reply":
    case "reactor.done":
      return "idle";
    case "reactor.gate.blocked":
      return data.reason === "approval" ? "waiting_approval" : current;
    case "reactor.gate.cleared":
      return "busy";
    case "reactor.error":
      return data.fatal === true ? "idle" : current;
    default:
      return current;
  }
}

export class EventCollector {
  private state: CollectorState;

  private constructor(state: CollectorState) {
    this.state = state;
  }

  /** A fresh collector for an instance's session (on launch or reconnect). */
  static create(ids: { instanceId: string; sessionId: string; tenantId: string }): EventCollector {
    return new EventCollector({
      version: 1,
      ...ids,
      status: "idle",
      ended: false,
      turnId: null,
      lastTurnId: null,
      finalized: false,
      ordinal: 0,
      text: "",
      streamingText: "",
      hadError: false,
      pendingError: false,
      errors: [],
      calls: {},
      toolCalls: [],
      toolErrors: [],
    });
  }

  /** Continues from a state `serializeState()` returned (possibly in another isolate). */
  static restoreState(state: CollectorState): EventCollector {
    if (!isRecord(state) || state.version !== 1) throw new Error("Unsupported collector state");
    return new EventCollector(structuredClone(state));
  }

  /** A plain-JSON copy of the state. */
  serializeState(): CollectorState {
    return structuredClone(this.state);
  }

  get status(): RuntimeStatus {
    return this.state.status;
  }

  get ended(): boolean {
    return this.state.ended;
  }

  get currentTurnId(): string | null {
    return this.state.turnId;
  }

  /** Survives finalization, so an SSE replay can name the turn. */
  get lastTurnId(): string | null {
    return this.state.lastTurnId;
  }

  /** Persisted text of the current turn plus the text still streaming. */
  get accumulatedText(): string {
    return this.state.text + this.state.streamingText;
  }

  /**
   * Applies one event: writes its rows (one batch) and returns the status and any finalized turn. `trace`
   * is the context a turn this event opens takes, unless it continues a tool loop (docs/observability.md).
   */
  async apply(
    db: Db,
    event: InferenceEvent,
    now: Date = new Date(),
    trace: TraceContext | null = null,
  ): Promise<ApplyResult> {
    const before = this.state;
    if (before.ended) {
      return { status: before.status, statusChanged: false, committed: null, wrote: false, settled: null };
    }
    const step = new Step(db, structuredClone(before), now, trace);
    step.s.status = deriveStatus(before.status, event);
    collect(step, event);
    const wrote = await step.flush();
    this.state = step.s;
    return {
      status: step.s.status,
      statusChanged: step.s.status !== before.status,
      committed: step.committed,
      wrote,
      settled: step.settled,
    };
  }

  /**
   * Finalizes an open turn as `failed` with an `error` part (e.g. category `sidecar_disconnected`), without
   * a `turn.committed`. Returns whether a turn was open.
   */
  async abandon(
    db: Db,
    category: string,
    message = "The turn was abandoned",
    now: Date = new Date(),
  ): Promise<{ settled: SettledUsage | null } | null> {
    if (!this.state.turnId) return null;
    const step = new Step(db, structuredClone(this.state), now);
    step.error(category, message);
    step.finalize("failed", false, false);
    step.s.status = "idle";
    await step.flush();
    this.state = step.s;
    return { settled: step.settled };
  }
}

/** One event's worth of changes: the next state, the statements to write and the summary, if any. */
class Step {
  readonly writes: Statement[] = [];
  committed: TurnCommitted | null = null;
  settled: SettledUsage | null = null;

  constructor(
    readonly db: Db,
    readonly s: CollectorState,
    readonly now: Date,
    readonly trace: TraceContext | null = null,
  ) {}

  /** `continues`: the next step of the tool loop whose turn was open, which stays in that turn's trace. */
  openTurn(model: string, continues = false): void {
    const s = this.s;
    const id = newId("inferenceTurn");
    // A trace of the hub's own is named after the turn that starts it.
    if (!continues || !s.trace) s.trace = this.trace ?? { traceId: id.slice(4), parentSpanId: null };
    this.writes.push(
      this.db.insert(inferenceTurn).values({
        id,
        sessionId: s.sessionId,
        instanceId: s.instanceId,
        tenantId: s.tenantId,
        model,
        status: "running",
        startedAt: this.now,
        traceId: s.trace.traceId,
        parentSpanId: s.trace.parentSpanId,
      }),
    );
    s.turnId = id;
    s.lastTurnId = id;
    s.finalized = false;
    s.ordinal = 0;
    s.text = "";
    s.streamingText = "";
    s.hadError = false;
    s.pendingError = false;
    s.errors = [];
    s.calls = {};
    s.toolCalls = [];
    s.toolErrors = [];
    s.callUsage = emptyUsage();
    s.callSettled = false;
    s.callModel = model;
  }

  /** Inserts a part into the open turn; without one the part is dropped. */
  part(type: PartType, content: string | null, metadata: Record<string, unknown> | null = null): void {
    const s = this.s;
    if (!s.turnId) return;
    this.writes.push(
      this.db.insert(turnPart).values({
        id: newId("turnPart"),
        turnId: s.turnId,
        sessionId: s.sessionId,
        type,
        content,
        metadata,
        ordinal: s.ordinal,
        createdAt: this.now,
      }),
    );
    s.ordinal += 1;
  }

  error(category: string, message: string, statusCode?: number): void {
    if (!this.s.turnId) return;
    this.part("error", message, statusCode === undefined ? { category } : { category, statusCode });
    this.s.errors.push({ category, message });
    this.s.hadError = true;
  }

  /** An interim report: the call's usage so far, replacing the previous one (reports are cumulative). */
  reportUsage(usage: unknown): void {
    const s = this.s;
    if (!s.turnId || s.callSettled || !isRecord(usage)) return;
    s.callUsage = usageOf(usage);
  }

  /**
   * The call ended: its usage (the final report if given, else the last interim one) is written to the turn,
   * once, and handed to metering.
   */
  settleUsage(final: unknown, source: string | null): void {
    const s = this.s;
    if (!s.turnId || s.callSettled) return;
    const usage = isRecord(final) ? usageOf(final) : (s.callUsage ?? emptyUsage());
    s.callSettled = true;
    s.callUsage = usage;
    this.writes.push(
      this.db
        .update(inferenceTurn)
        .set({
          inputTokens: usage.input,
          outputTokens: usage.output,
          cacheReadTokens: usage.cacheRead,
          cacheWriteTokens: usage.cacheWrite,
          thinkingTokens: usage.thinking,
        })
        .where(eq(inferenceTurn.id, s.turnId)),
    );
    this.settled = { turnId: s.turnId, model: s.callModel ?? "unknown", source, usage };
  }

  /** Closes the open turn; `notify` produces the `turn.committed` summary. */
  finalize(status: "completed" | "failed", hadReply: boolean, notify = true): void {
    const s = this.s;
    if (!s.turnId) return;
    this.settleUsage(null, null);
    this.writes.push(
      this.db.update(inferenceTurn).set({ status, endedAt: this.now }).where(eq(inferenceTurn.id, s.turnId)),
    );
    if (notify) {
      this.committed = structuredClone({
        turnId: s.turnId,
        status,
        text: s.text,
        hadReply,
        hadError: s.hadError,
        errors: s.errors,
        toolCalls: s.toolCalls,
        toolErrors: s.toolErrors,
      });
    }
    s.turnId = null;
    s.finalized = true;
    s.pendingError = false;
  }

  /** Writes the step's rows in one batch; false when there were none. */
  async flush(): Promise<boolean> {
    const [first, ...rest] = this.writes;
    if (!first) return false;
    await this.db.batch([first, ...rest]);
    return true;
  }
}

function collect(step: Step, event: InferenceEvent): void {
  const s = step.s;
  const data = isRecord(event.data) ? event.data : {};
  switch (event.type) {
    case "inference.start": {
      // A new step while a turn is open: the multi-step tool loop closes the previous one, failed if its
      // model call failed (a retry does not make the failed call a success).
      const continues = s.turnId !== null;
      if (continues) step.finalize(s.pendingError ? "failed" : "completed", false);
      const model = str(data.model) || "unknown";
      step.openTurn(model, continues);
      step.part("step-start", null, { model });
      return;
    }
    case "inference.text.delta":
      if (s.turnId) s.streamingText += str(data.token);
      return;
    case "inference.usage":
      step.reportUsage(data.usage);
      return;
    case "inference.done": {
      // Once per call: a repeated `inference.done` (a replayed frame) adds nothing.
      if (!s.turnId || s.callSettled) return;
      const turn = isRecord(data.turn) ? data.turn : {};
      const blocks = Array.isArray(turn.content) ? turn.content : [];
      for (const block of blocks) if (isRecord(block)) collectBlock(step, block);
      step.part("step-finish", null);
      s.streamingText = "";
      step.settleUsage(data.usage, str(data.source) || null);
      return;
    }
    case "tool.done": {
      if (!s.turnId) return;
      const result = isRecord(data.result) ? data.result : {};
      const callId = str(result.callId);
      const isError = result.isError === true;
      const content = result.content ?? null;
      step.part("tool", null, { kind: "result", callId, content, isError });
      const call = s.calls[callId];
      const name = call?.name ?? "unknown";
      const text = typeof content === "string" ? content : JSON.stringify(content);
      s.toolCalls.push({ name, arguments: call?.arguments ?? null, result: text, isError });
      if (isError) s.toolErrors.push({ name, content: text });
      return;
    }
    case "inference.error": {
      if (!s.turnId) return;
      const error = isRecord(data.error) ? data.error : {};
      const statusCode = typeof error.statusCode === "number" ? error.statusCode : undefined;
      step.error(str(error.category) || "fatal", str(error.message), statusCode);
      s.pendingError = true;
      // The call failed: what it used so far is what it cost.
      step.settleUsage(null, null);
      return;
    }
    case "connector.reply": {
      if (s.finalized) return;
      // The failed inference stored no text: keep what the agent replied with instead.
      if (s.pendingError && s.turnId) {
        const content = str(data.content);
        step.part("text", content);
        s.text += content;
      }
      step.finalize(s.hadError ? "failed" : "completed", true);
      return;
    }
    case "reactor.done":
      step.finalize(s.pendingError ? "failed" : "completed", false);
      s.ended = true;
      return;
    case "reactor.error": {
      const fatal = data.fatal === true;
      if (!s.finalized) {
        if (!s.turnId) step.openTurn("unknown");
        step.error("reactor_error", errorMessage(data.error));
        if (fatal) step.finalize("failed", false);
      }
      if (fatal) s.ended = true;
      return;
    }
    default:
      return;
  }
}

const mediaTypes = new Set(["image", "audio", "video", "document"]);

function collectBlock(step: Step, block: Record<string, unknown>): void {
  const s = step.s;
  switch (block.type) {
    case "text": {
      const text = str(block.text);
      step.part("text", text);
      s.text += text;
      return;
    }
    case "thinking":
      step.part("reasoning", str(block.thinking));
      return;
    case "refusal":
      step.part("refusal", str(block.reason));
      return;
    case "tool_call": {
      const callId = str(block.callId);
      const name = str(block.name);
      const args = block.arguments ?? null;
      step.part("tool", null, { kind: "call", callId, name, arguments: args });
      s.calls[callId] = { name, arguments: args };
      return;
    }
    default: {
      if (typeof block.type !== "string" || !mediaTypes.has(block.type)) return; // tool results, citations…
      const mimeType = str(block.mimeType);
      if (typeof block.data === "string") {
        step.part("file", null, { kind: "base64", mimeType, dataLength: block.data.length });
      } else if (typeof block.reference === "string") {
        step.part("file", null, { kind: "file-reference", mimeType, reference: block.reference });
      } else if (typeof block.url === "string") {
        step.part("file", null, { kind: "url", mimeType, url: block.url });
      }
    }
  }
}

function errorMessage(error: unknown): string {
  if (typeof error === "string") return error;
  if (isRecord(error) && typeof error.message === "string") return error.message;
  return error === undefined ? "Reactor error" : JSON.stringify(error);
}

export function emptyUsage(): TokenUsage {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, thinking: 0 };
}

/** A reported usage with every count a non-negative integer (anything else counts 0). */
function usageOf(usage: Record<string, unknown>): TokenUsage {
  return {
    input: tokenCount(usage.input),
    output: tokenCount(usage.output),
    cacheRead: tokenCount(usage.cacheRead),
    cacheWrite: tokenCount(usage.cacheWrite),
    thinking: tokenCount(usage.thinking),
  };
}

function tokenCount(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
