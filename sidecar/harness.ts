/**
 * One agent instance on the sidecar: its configuration, grants and sources, its conversation, and the turn
 * loop. Each `mail.inbound` becomes one turn (one at a time, in arrival order) that streams `agent.event`
 * frames and ends with a reply mail to the sender. Within a turn the model may call tools: each model call
 * is one step (the hub records one turn per step), tool results go back to the model, and the last step's
 * text is the reply.
 */
import { MAX_LOG_MESSAGE_CHARS } from "../src/runtime/frame-schemas";
import type {
  ConnectorState,
  HarnessConfig,
  InferenceSource,
  InstanceHubFrame,
  InstanceSidecarFrame,
  LogLevel,
  TokenUsage,
  WireGrantRule,
} from "../src/runtime/protocol";
import { type ApprovalOutcome, Gates } from "./gates";
import { buildReply, type InboundMail, parseInbound } from "./mime";
import {
  backendFor,
  type ChatMessage,
  emptyUsage,
  InferenceError,
  type ModelOptions,
  sleep,
  type ToolCall,
} from "./models";
import type { CheckpointReason, StateMetadata, StateRecorder, ToolOutput, Turn } from "./state-repo";
import { builtinTools, type Tool, type ToolResult } from "./tools";

export type HarnessOptions = {
  /** Sends a frame on the instance channel; frames sent while it is down are lost. */
  send: (frame: InstanceSidecarFrame) => void;
  log?: (line: string) => void;
  models?: ModelOptions;
  /** The hub's base URL, for the `hub_api` tool. */
  hubUrl?: string;
  /** How long the hub has to answer a `gate.request` (default 15 s). */
  gateAnswerTimeoutMs?: number;
  /** Where the conversation, mail and errors are committed (the instance's state repository). */
  state?: StateRecorder;
};

type ModelStep = { text: string; toolCalls: ToolCall[]; model: string } | { error: InferenceError; partial: string };

type QueuedMail = { mailId: string; rawMessage: string };

/** Messages of conversation kept for the model (user and assistant, not counting the system prompt). */
const MAX_HISTORY = 100;
/** Model calls in one turn; a model still calling tools after this many is stopped. */
const MAX_STEPS = 8;
/** A tool call's arguments are shown to the approver up to this size (the hub's limit for gate context). */
const MAX_GATE_CONTEXT = 16 * 1024;
/** A Message-ID we can put back in a header: `<local@domain>`, printable ASCII. */
const VALID_MESSAGE_ID = /^<[\x21-\x3b\x3d\x3f\x41-\x7e]+@[\x21-\x3b\x3d\x3f\x41-\x7e]+>$/;

/**
 * A `log` frame: a line for the instance's logs on the hub (docs/sidecar-protocol.md, section 3.4). A long
 * message (an endpoint's error body) is cut to what the hub takes, rather than the whole line being refused.
 */
export function logFrame(
  agentAddress: string,
  level: LogLevel,
  message: string,
  metadata?: Record<string, unknown>,
): InstanceSidecarFrame {
  const text = message.length > MAX_LOG_MESSAGE_CHARS ? `${message.slice(0, MAX_LOG_MESSAGE_CHARS - 1)}…` : message;
  return { type: "log", agentAddress, level, message: text, ...(metadata ? { metadata } : {}) };
}

export class Harness {
  config: HarnessConfig;
  /** `session.start` was received: mail may run. */
  started = false;
  private readonly options: HarnessOptions;
  /** The conversation so far (user and assistant turns; the system prompt is prepended per call). */
  private readonly history: ChatMessage[] = [];
  private readonly queue: QueuedMail[] = [];
  private current: { controller: AbortController; done: Promise<void> } | null = null;
  private seq = 0;
  /** The channel is up (and, after a reconnect, the challenge was answered). */
  private online = false;
  private stopped = false;
  private pumping = false;
  private readonly gates: Gates;
  private readonly tools: Tool[];
  /** The whole conversation as `turns.jsonl` has it (unlike `history`, never cut). */
  private readonly turns: Turn[] = [];
  /** Tokens used by every model call so far. */
  private tokenUsage: TokenUsage = emptyUsage();
  private connectorState: ConnectorState = null;

  constructor(config: HarnessConfig, options: HarnessOptions) {
    this.config = config;
    this.options = options;
    this.gates = new Gates({
      send: options.send,
      agentAddress: () => this.agentAddress,
      ...(options.gateAnswerTimeoutMs === undefined ? {} : { answerTimeoutMs: options.gateAnswerTimeoutMs }),
    });
    this.tools = builtinTools({
      hubUrl: options.hubUrl ?? "http://127.0.0.1:8787",
      apiToken: () => this.config.apiToken,
    });
  }

  get agentAddress(): string {
    return this.config.agentAddress;
  }

  start(): void {
    this.started = true;
    this.pump();
  }

  /**
   * The instance channel went up or down. A turn running when it drops is stopped: the hub has already
   * marked it failed, and its remaining events would have no turn to land in. Queued mail waits.
   */
  setOnline(online: boolean): void {
    this.online = online;
    if (online) this.pump();
    else this.current?.controller.abort();
  }

  deliver(mailId: string, rawMessage: string): void {
    if (this.stopped) return;
    this.queue.push({ mailId, rawMessage });
    this.pump();
  }

  /** Stops the running turn, if any, and resolves once its closing events are out. */
  async abort(): Promise<boolean> {
    const current = this.current;
    if (!current) return false;
    current.controller.abort();
    await current.done;
    return true;
  }

  /**
   * Takes the conversation from the state repository (after a restart, or a restore by a person): the
   * model sees it as history, and the next checkpoint continues it.
   */
  restoreConversation(turns: Turn[], metadata: StateMetadata | null): void {
    this.turns.splice(0, this.turns.length, ...turns);
    this.history.splice(0, this.history.length, ...historyOf(turns));
    if (this.history.length > MAX_HISTORY) this.history.splice(0, this.history.length - MAX_HISTORY);
    this.tokenUsage = { ...emptyUsage(), ...(metadata?.tokenUsage ?? {}) };
    this.connectorState = metadata?.connectorState ?? null;
  }

  updateGrants(grants: WireGrantRule[]): void {
    this.config = { ...this.config, grants };
  }

  updateSources(sources: InferenceSource[], defaultSource: string): void {
    this.config = { ...this.config, sources, defaultSource };
  }

  /** A `gate.decision` or `approval.decision` from the hub. */
  onDecision(frame: Extract<InstanceHubFrame, { type: "gate.decision" | "approval.decision" }>): void {
    if (frame.type === "gate.decision") this.gates.onGateDecision(frame);
    else this.gates.onApprovalDecision(frame);
  }

  /** Stops for good: drops queued mail and ends the running turn. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    await this.abort();
  }

  private log(line: string): void {
    this.options.log?.(`[${this.config.instanceId}] ${line}`);
  }

  /** A line for the operator, in the instance's logs on the hub. */
  private report(level: LogLevel, message: string, metadata?: Record<string, unknown>): void {
    this.options.send(logFrame(this.agentAddress, level, message, metadata));
  }

  private emit(type: string, data: Record<string, unknown>): void {
    this.seq += 1;
    this.options.send({
      type: "agent.event",
      agentAddress: this.agentAddress,
      sessionId: this.config.sessionId,
      event: { type, seq: this.seq, data },
    });
  }

  private checkpoint(reason: CheckpointReason, toolOutputs?: ToolOutput[]): void {
    this.options.state?.checkpoint(reason, {
      turns: [...this.turns],
      metadata: { pendingOperations: [], tokenUsage: { ...this.tokenUsage }, connectorState: this.connectorState },
      ...(toolOutputs ? { toolOutputs } : {}),
    });
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.started && this.online && !this.stopped && this.queue.length > 0) {
          const mail = this.queue.shift() as QueuedMail;
          const controller = new AbortController();
          const done = this.runTurn(mail, controller.signal).catch((error: unknown) => {
            this.log(`turn for ${mail.mailId} failed: ${(error as Error).message}`);
          });
          this.current = { controller, done };
          await done;
          this.current = null;
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** The source model calls go to: the default one, else the first. */
  source(): InferenceSource | undefined {
    const { sources, defaultSource } = this.config;
    return sources.find((s) => s.id === defaultSource) ?? sources[0];
  }

  private async runTurn(mail: QueuedMail, signal: AbortSignal): Promise<void> {
    let inbound: InboundMail;
    try {
      inbound = parseInbound(mail.rawMessage, mail.mailId);
    } catch (error) {
      this.log(`mail ${mail.mailId} is not readable MIME, skipped: ${(error as Error).message}`);
      return;
    }
    this.log(`mail ${mail.mailId} from ${inbound.from ?? "?"}`);
    this.options.state?.recordMail({
      direction: "in",
      raw: Buffer.from(mail.rawMessage, "base64"),
      messageId: inbound.messageId,
      threadRoot: threadRootOf(inbound) ?? `<${mail.mailId}@inbound>`,
    });
    this.history.push({ role: "user", content: inbound.text });
    this.turns.push({ role: "user", content: [{ type: "text", text: inbound.text }], timestamp: Date.now() });
    // This turn's tool calls and results join the history only when the turn ends well, whole.
    const steps: ChatMessage[] = [];
    for (let step = 1; ; step++) {
      const outcome = await this.callModel(steps, signal);
      if ("error" in outcome) return this.failTurn(outcome.error, outcome.partial, inbound);
      const { text, toolCalls, model } = outcome;
      if (toolCalls.length === 0 || step >= MAX_STEPS) {
        const reply = toolCalls.length ? `${text}\n\n[Stopped after ${MAX_STEPS} model calls]`.trim() : text;
        this.history.push(...steps, { role: "assistant", content: reply });
        this.turns.push({ role: "assistant", content: [{ type: "text", text: reply }], model, timestamp: Date.now() });
        // Keep the conversation bounded: the oldest exchanges go first.
        if (this.history.length > MAX_HISTORY) this.history.splice(0, this.history.length - MAX_HISTORY);
        this.emit("connector.reply", { content: reply });
        this.reply(inbound, reply, "inference-done");
        return;
      }
      steps.push({ role: "assistant", content: text, toolCalls });
      this.turns.push({
        role: "assistant",
        content: [
          ...(text ? [{ type: "text" as const, text }] : []),
          ...toolCalls.map((call) => ({ type: "tool_call" as const, ...call })),
        ],
        model,
        timestamp: Date.now(),
      });
      this.checkpoint("tool-execution");
      for (const call of toolCalls) {
        let result: ToolResult;
        try {
          result = await this.runTool(call, signal);
        } catch (thrown) {
          return this.failTurn(asInferenceError(thrown, signal), "", inbound);
        }
        steps.push({
          role: "tool",
          callId: call.callId,
          name: call.name,
          content: result.content,
          isError: result.isError,
        });
        const output = { callId: call.callId, content: result.content, isError: result.isError };
        this.turns.push({
          role: "user",
          content: [
            {
              type: "tool_result",
              callId: call.callId,
              content: result.content,
              ...(result.isError ? { isError: true } : {}),
            },
          ],
          timestamp: Date.now(),
        });
        this.checkpoint("tool-done", [output]);
      }
    }
  }

  /** One model call (one step of the turn), with retries before its first output. */
  private async callModel(steps: ChatMessage[], signal: AbortSignal): Promise<ModelStep> {
    const source = this.source();
    const messages: ChatMessage[] = [
      ...(this.config.systemPrompt ? [{ role: "system" as const, content: this.config.systemPrompt }] : []),
      ...this.history,
      ...steps,
    ];
    this.emit("inference.start", { model: source?.model ?? "unknown" });
    let text = "";
    let toolCalls: ToolCall[] = [];
    let usage: TokenUsage = emptyUsage();
    const retries = this.options.models?.retries ?? 2;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!source) throw new InferenceError("fatal", "No inference source is configured for this instance");
        const backend = backendFor(source, this.options.models);
        for await (const chunk of backend.stream(messages, source, signal, this.tools)) {
          if (signal.aborted) break;
          if ("token" in chunk) {
            text += chunk.token;
            this.emit("inference.text.delta", { token: chunk.token });
          } else if ("toolCall" in chunk) {
            const { callId, name, arguments: args } = chunk.toolCall;
            toolCalls.push(chunk.toolCall);
            this.emit("inference.tool_call.start", { callId, name, partial: false });
            this.emit("inference.tool_call.end", { callId, name, arguments: args, partial: false });
          } else {
            usage = chunk.usage;
          }
        }
        if (signal.aborted) throw new InferenceError("aborted", "The turn was aborted");
        break;
      } catch (thrown) {
        const error = asInferenceError(thrown, signal);
        const delayMs = retryDelay(error, attempt, this.options.models?.retryBaseMs ?? 1_000);
        // Only a failure before any output is retried: what was already sent cannot be taken back.
        if (delayMs !== null && attempt < retries && text === "" && toolCalls.length === 0) {
          this.emit("inference.retry", { attempt: attempt + 1, delayMs, previousError: errorData(error) });
          this.report(
            "warn",
            `Model call to ${source?.model ?? "unknown"} failed (${error.category}), retrying in ${delayMs} ms: ${error.message}`,
            { model: source?.model ?? "unknown", attempt: attempt + 1, delayMs, ...errorDetail(error) },
          );
          try {
            await sleep(delayMs, signal);
            continue;
          } catch (interrupted) {
            return { error: asInferenceError(interrupted, signal), partial: text };
          }
        }
        toolCalls = [];
        return { error, partial: text };
      }
    }
    const model = source?.model ?? "unknown";
    for (const key of Object.keys(usage) as (keyof TokenUsage)[]) this.tokenUsage[key] += usage[key];
    this.emit("inference.usage", { usage, source: source?.id });
    const content = [
      ...(text || toolCalls.length === 0 ? [{ type: "text", text }] : []),
      ...toolCalls.map((call) => ({ type: "tool_call", ...call })),
    ];
    const turn = { role: "assistant", content, model, timestamp: new Date().toISOString() };
    this.emit("inference.done", { turn, usage, source: source?.id });
    return { text, toolCalls, model };
  }

  /**
   * Runs one tool call: asks the hub first when the tool is gated, waits for a person when it must, and
   * reports the result (`tool.start`, `tool.done`). A refusal is the call's error result, for the model to
   * read. Throws only when the turn is aborted.
   */
  private async runTool(call: ToolCall, signal: AbortSignal): Promise<ToolResult> {
    this.emit("tool.start", { call });
    const tool = this.tools.find((t) => t.name === call.name);
    let result: ToolResult;
    if (!tool) {
      result = { content: `There is no tool named ${call.name}`, isError: true };
    } else {
      const refused = tool.gated ? await this.gate(call, signal) : null;
      result =
        refused ??
        (await tool
          .run(call.arguments, {
            signal,
            awaitApproval: (approvalId, expiresAt) => this.awaitApproval(approvalId, expiresAt, signal),
          })
          .catch((error: unknown) => {
            if (signal.aborted) throw new InferenceError("aborted", "The turn was aborted");
            return { content: `The tool failed: ${(error as Error).message}`, isError: true };
          }));
    }
    if (signal.aborted) throw new InferenceError("aborted", "The turn was aborted");
    this.emit("tool.done", { result: { callId: call.callId, ...result } });
    return result;
  }

  /** Null when the call may go ahead; otherwise the error result that says why not. */
  private async gate(call: ToolCall, signal: AbortSignal): Promise<ToolResult | null> {
    const shown = JSON.stringify(call.arguments);
    const context =
      shown.length <= MAX_GATE_CONTEXT ? call.arguments : { truncated: true, preview: shown.slice(0, 1_000) };
    const answer = await this.gates.ask(`tool:${call.name}`, "invoke", context, signal);
    if (answer.decision === "allow") return null;
    if (answer.decision === "deny") return { content: `Not allowed: ${answer.reason}`, isError: true };
    const outcome = await this.awaitApproval(answer.approvalId, answer.expiresAt, signal);
    if (outcome.decision === "approved") return null;
    if (outcome.decision === "expired") return { content: "Nobody approved this call in time", isError: true };
    return { content: `A person rejected this call${outcome.message ? `: ${outcome.message}` : ""}`, isError: true };
  }

  /** The instance shows `waiting_approval` until the decision comes. */
  private async awaitApproval(
    approvalId: string,
    expiresAt: string | null,
    signal: AbortSignal,
  ): Promise<ApprovalOutcome> {
    this.emit("reactor.gate.blocked", { reason: "approval", gateId: approvalId });
    const outcome = await this.gates.decision(approvalId, expiresAt, signal);
    this.emit("reactor.gate.cleared", {
      gateId: approvalId,
      reason: outcome.decision === "expired" ? "timeout" : "resolved",
    });
    if (outcome.decision === "approved") this.checkpoint("gate-cleared");
    return outcome;
  }

  /**
   * Ends a failed turn. An abort (kill switch) ends the reactor: `inference.error` + `reactor.done`, and
   * nothing is mailed. Any other failure is answered: `inference.error`, then `connector.reply` (the hub
   * records the turn as failed, with that text) and a reply mail, so the sender learns it did not work.
   */
  private failTurn(error: InferenceError, partialText: string, inbound: InboundMail): void {
    this.log(`turn ${error.category}: ${error.message}`);
    // An abort is a person's (or the hub's) doing, and the hub logs it; anything else is the model call failing.
    if (error.category !== "aborted") {
      const model = this.source()?.model ?? "unknown";
      this.report("error", `Model call to ${model} failed: ${error.category}: ${error.message}`, {
        model,
        ...errorDetail(error),
      });
    }
    this.emit("inference.error", { error: errorData(error), partial: partialText.length > 0 });
    this.options.state?.recordErrors(this.config.sessionId, [
      {
        source: "inference",
        category: error.category,
        message: error.message,
        ...(error.statusCode === undefined ? {} : { statusCode: error.statusCode }),
        // It ended the turn.
        fatal: true,
        timestamp: Date.now(),
      },
    ]);
    if (error.category === "aborted") {
      this.checkpoint("inference-error");
      this.emit("reactor.done", {});
      return;
    }
    const content = `${partialText ? `${partialText}\n\n` : ""}[The model could not answer: ${error.category}]`;
    this.emit("connector.reply", { content });
    this.reply(inbound, content, "inference-error");
  }

  /**
   * Mails the answer back to whoever wrote, threaded under their message, after the turn's closing
   * checkpoint (which already holds the new connector state; the mail record names that checkpoint).
   */
  private reply(inbound: InboundMail, text: string, reason: CheckpointReason): void {
    const mail = this.replyMail(inbound, text);
    if (!mail) {
      this.checkpoint(reason);
      return;
    }
    const { rawMessage, messageId, to } = mail;
    const threadRoot = threadRootOf(inbound) ?? messageId;
    const connectorState: ConnectorState = {
      threadRoot,
      lastMessageId: messageId,
      replyTo: to,
      cc: [],
      ...(inbound.subject ? { subject: inbound.subject } : {}),
    };
    this.connectorState = connectorState;
    this.checkpoint(reason);
    this.options.state?.recordMail({ direction: "out", raw: Buffer.from(rawMessage, "base64"), messageId, threadRoot });
    this.options.send({
      type: "mail.outbound",
      agentAddress: this.agentAddress,
      rawMessage,
      recipients: [to],
      messageId,
      sessionId: this.config.sessionId,
    });
    this.options.send({ type: "connector.state.changed", agentAddress: this.agentAddress, connectorState });
    this.log(`replied to ${to}`);
  }

  /** The reply's MIME, or null when there is nobody to answer (or they must not be answered). */
  private replyMail(inbound: InboundMail, text: string): { rawMessage: string; messageId: string; to: string } | null {
    const to = inbound.replyTo;
    if (!to || to.toLowerCase() === this.agentAddress.toLowerCase()) return null;
    // RFC 3834: never answer an automatic message (another agent's reply), or two agents loop forever.
    if (inbound.autoSubmitted) {
      this.log(`not replying to an automatic message from ${to}`);
      return null;
    }
    // Threading ids we cannot write back (hostile or broken headers) are left out rather than failing the reply.
    const inReplyTo = inbound.messageId && VALID_MESSAGE_ID.test(inbound.messageId) ? inbound.messageId : null;
    let reply: { rawMessage: string; messageId: string };
    try {
      reply = buildReply({
        from: this.agentAddress,
        to,
        subject: inbound.subject,
        inReplyTo,
        references: inbound.references.filter((id) => VALID_MESSAGE_ID.test(id)),
        text,
        interchange: {
          Type: "conversation.message",
          "Tenant-ID": this.config.tenantId,
          "Session-ID": this.config.sessionId,
        },
      });
    } catch (error) {
      this.log(`cannot reply to ${to}: ${(error as Error).message}`);
      return null;
    }
    return { ...reply, to };
  }
}

/** The Message-ID that starts the inbound mail's thread: the first reference, else what it answers, else itself. */
function threadRootOf(inbound: InboundMail): string | null {
  const valid = (id: string | null | undefined) => (id && VALID_MESSAGE_ID.test(id) ? id : null);
  return (
    valid(inbound.references.find((id) => VALID_MESSAGE_ID.test(id))) ??
    valid(inbound.inReplyTo) ??
    valid(inbound.messageId)
  );
}

/** The model's view of a committed conversation: text, tool calls and their results. */
function historyOf(turns: Turn[]): ChatMessage[] {
  const history: ChatMessage[] = [];
  const names = new Map<string, string>();
  for (const turn of turns) {
    const text = turn.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join("\n");
    if (turn.role === "assistant") {
      const toolCalls = turn.content.flatMap((block) =>
        block.type === "tool_call"
          ? [{ callId: block.callId, name: block.name, arguments: (block.arguments ?? {}) as Record<string, unknown> }]
          : [],
      );
      for (const call of toolCalls) names.set(call.callId, call.name);
      history.push(
        toolCalls.length ? { role: "assistant", content: text, toolCalls } : { role: "assistant", content: text },
      );
    } else if (turn.role === "user" && turn.content[0]?.type === "tool_result") {
      for (const block of turn.content) {
        if (block.type !== "tool_result") continue;
        const content = typeof block.content === "string" ? block.content : JSON.stringify(block.content);
        history.push({
          role: "tool",
          callId: block.callId,
          name: names.get(block.callId) ?? "",
          content,
          isError: block.isError === true,
        });
      }
    } else if (turn.role === "user") {
      history.push({ role: "user", content: text });
    }
  }
  // A turn cut in the middle of its tools leaves calls without results, which models refuse: leave them out.
  const answered = new Set(history.flatMap((m) => (m.role === "tool" ? [m.callId] : [])));
  const dropped = new Set<string>();
  return history.filter((m) => {
    if (m.role === "assistant" && m.toolCalls?.some((call) => !answered.has(call.callId))) {
      for (const call of m.toolCalls) dropped.add(call.callId);
      return false;
    }
    return !(m.role === "tool" && dropped.has(m.callId));
  });
}

function asInferenceError(thrown: unknown, signal: AbortSignal): InferenceError {
  if (thrown instanceof InferenceError) return thrown;
  return new InferenceError(signal.aborted ? "aborted" : "fatal", (thrown as Error)?.message ?? String(thrown));
}

/** A log line's metadata about an error; its message is in the line already. */
function errorDetail(error: InferenceError): Record<string, unknown> {
  return {
    category: error.category,
    ...(error.statusCode === undefined ? {} : { statusCode: error.statusCode }),
  };
}

function errorData(error: InferenceError): Record<string, unknown> {
  return {
    category: error.category,
    message: error.message,
    ...(error.statusCode === undefined ? {} : { statusCode: error.statusCode }),
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
  };
}

/** Longest Retry-After worth waiting for inside a turn; beyond it the turn fails with quota_exhausted. */
const MAX_RETRY_AFTER_MS = 20_000;

/** How long to wait before another attempt, or null when the failure is not worth retrying. */
function retryDelay(error: InferenceError, attempt: number, baseMs: number): number | null {
  if (error.category === "retryable" || error.category === "timeout") return baseMs * 2 ** attempt;
  if (error.category === "quota_exhausted" && error.retryAfterMs !== undefined) {
    return error.retryAfterMs <= MAX_RETRY_AFTER_MS ? error.retryAfterMs : null;
  }
  return null;
}
