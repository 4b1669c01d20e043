/**
 * One agent instance on the sidecar: its configuration, grants and sources, its conversation, and the turn
 * loop. Each `mail.inbound` becomes one turn (one at a time, in arrival order) that streams `agent.event`
 * frames and ends with a reply mail to the sender.
 */
import type {
  ConnectorState,
  HarnessConfig,
  InferenceSource,
  InstanceSidecarFrame,
  TokenUsage,
  WireGrantRule,
} from "../src/runtime/protocol";
import { buildReply, type InboundMail, parseInbound } from "./mime";
import { backendFor, type ChatMessage, emptyUsage, InferenceError, type ModelOptions, sleep } from "./models";

export type HarnessOptions = {
  /** Sends a frame on the instance channel; frames sent while it is down are lost. */
  send: (frame: InstanceSidecarFrame) => void;
  log?: (line: string) => void;
  models?: ModelOptions;
};

type QueuedMail = { mailId: string; rawMessage: string };

/** Messages of conversation kept for the model (user and assistant, not counting the system prompt). */
const MAX_HISTORY = 100;
/** A Message-ID we can put back in a header: `<local@domain>`, printable ASCII. */
const VALID_MESSAGE_ID = /^<[\x21-\x3b\x3d\x3f\x41-\x7e]+@[\x21-\x3b\x3d\x3f\x41-\x7e]+>$/;

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

  constructor(config: HarnessConfig, options: HarnessOptions) {
    this.config = config;
    this.options = options;
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

  updateGrants(grants: WireGrantRule[]): void {
    this.config = { ...this.config, grants };
  }

  updateSources(sources: InferenceSource[], defaultSource: string): void {
    this.config = { ...this.config, sources, defaultSource };
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

  private emit(type: string, data: Record<string, unknown>): void {
    this.seq += 1;
    this.options.send({
      type: "agent.event",
      agentAddress: this.agentAddress,
      sessionId: this.config.sessionId,
      event: { type, seq: this.seq, data },
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

  private source(): InferenceSource | undefined {
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
    const source = this.source();
    const userMessage: ChatMessage = { role: "user", content: inbound.text };
    const messages: ChatMessage[] = [
      ...(this.config.systemPrompt ? [{ role: "system" as const, content: this.config.systemPrompt }] : []),
      ...this.history,
      userMessage,
    ];
    this.history.push(userMessage);
    this.emit("inference.start", { model: source?.model ?? "unknown" });

    let text = "";
    let usage: TokenUsage = emptyUsage();
    const retries = this.options.models?.retries ?? 2;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!source) throw new InferenceError("fatal", "No inference source is configured for this instance");
        for await (const chunk of backendFor(source, this.options.models).stream(messages, source, signal)) {
          if (signal.aborted) break;
          if ("token" in chunk) {
            text += chunk.token;
            this.emit("inference.text.delta", { token: chunk.token });
          } else {
            usage = chunk.usage;
          }
        }
        if (signal.aborted) throw new InferenceError("aborted", "The turn was aborted");
        break;
      } catch (thrown) {
        const error = asInferenceError(thrown, signal);
        const delayMs = retryDelay(error, attempt, this.options.models?.retryBaseMs ?? 1_000);
        // Only a failure before the first token is retried: the deltas already sent cannot be taken back.
        if (delayMs !== null && attempt < retries && text === "") {
          this.emit("inference.retry", { attempt: attempt + 1, delayMs, previousError: errorData(error) });
          try {
            await sleep(delayMs, signal);
            continue;
          } catch (interrupted) {
            return this.failTurn(asInferenceError(interrupted, signal), text, inbound);
          }
        }
        return this.failTurn(error, text, inbound);
      }
    }
    if (!source) return; // unreachable: a missing source throws above

    this.emit("inference.usage", { usage, source: source.id });
    const turn = {
      role: "assistant",
      content: [{ type: "text", text }],
      model: source.model,
      timestamp: new Date().toISOString(),
    };
    this.emit("inference.done", { turn, usage, source: source.id });
    this.history.push({ role: "assistant", content: text });
    // Keep the conversation bounded: the oldest exchanges go first.
    if (this.history.length > MAX_HISTORY) this.history.splice(0, this.history.length - MAX_HISTORY);
    this.emit("connector.reply", { content: text });
    this.reply(inbound, text);
  }

  /**
   * Ends a failed turn. An abort (kill switch) ends the reactor: `inference.error` + `reactor.done`, and
   * nothing is mailed. Any other failure is answered: `inference.error`, then `connector.reply` (the hub
   * records the turn as failed, with that text) and a reply mail, so the sender learns it did not work.
   */
  private failTurn(error: InferenceError, partialText: string, inbound: InboundMail): void {
    this.log(`turn ${error.category}: ${error.message}`);
    this.emit("inference.error", { error: errorData(error), partial: partialText.length > 0 });
    if (error.category === "aborted") {
      this.emit("reactor.done", {});
      return;
    }
    const content = `${partialText ? `${partialText}\n\n` : ""}[The model could not answer: ${error.category}]`;
    this.emit("connector.reply", { content });
    this.reply(inbound, content);
  }

  /** Mails the answer back to whoever wrote, threaded under their message. */
  private reply(inbound: InboundMail, text: string): void {
    const to = inbound.replyTo;
    if (!to || to.toLowerCase() === this.agentAddress.toLowerCase()) return;
    // RFC 3834: never answer an automatic message (another agent's reply), or two agents loop forever.
    if (inbound.autoSubmitted) {
      this.log(`not replying to an automatic message from ${to}`);
      return;
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
      return;
    }
    const { rawMessage, messageId } = reply;
    this.options.send({
      type: "mail.outbound",
      agentAddress: this.agentAddress,
      rawMessage,
      recipients: [to],
      messageId,
      sessionId: this.config.sessionId,
    });
    const connectorState: ConnectorState = {
      threadRoot: inbound.references.find((id) => VALID_MESSAGE_ID.test(id)) ?? inReplyTo ?? messageId,
      lastMessageId: messageId,
      replyTo: to,
      cc: [],
      ...(inbound.subject ? { subject: inbound.subject } : {}),
    };
    this.options.send({ type: "connector.state.changed", agentAddress: this.agentAddress, connectorState });
    this.log(`replied to ${to}`);
  }
}

function asInferenceError(thrown: unknown, signal: AbortSignal): InferenceError {
  if (thrown instanceof InferenceError) return thrown;
  return new InferenceError(signal.aborted ? "aborted" : "fatal", (thrown as Error)?.message ?? String(thrown));
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
