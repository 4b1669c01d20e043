/**
 * Inference backends behind one interface: `stream(messages, source, signal, tools)` yields text tokens,
 * the tool calls the model makes (each whole, once its arguments are complete) and, at most once, the
 * token usage. Failures are thrown as `InferenceError` with an `ErrorCategory`, so the harness can turn
 * them into `inference.error` events.
 */
import type { InferenceSource, TokenUsage } from "../src/runtime/protocol";

/** A call the model asks for; `arguments` is the parsed JSON object it wrote. */
export type ToolCall = { callId: string; name: string; arguments: Record<string, unknown> };

/** A tool the model may call: a name, what it does, and a JSON Schema of its arguments. */
export type ToolSpec = { name: string; description: string; parameters: Record<string, unknown> };

export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: ToolCall[] }
  | { role: "tool"; callId: string; name: string; content: string; isError: boolean };

export type ModelChunk = { token: string } | { toolCall: ToolCall } | { usage: TokenUsage };

export type ErrorCategory =
  | "retryable"
  | "context_overflow"
  | "credential_failure"
  | "quota_exhausted"
  | "fatal"
  | "aborted"
  | "timeout"
  | "protocol_mismatch";

export class InferenceError extends Error {
  readonly category: ErrorCategory;
  readonly statusCode?: number;
  readonly retryAfterMs?: number;

  constructor(category: ErrorCategory, message: string, extra: { statusCode?: number; retryAfterMs?: number } = {}) {
    super(message);
    this.name = "InferenceError";
    this.category = category;
    if (extra.statusCode !== undefined) this.statusCode = extra.statusCode;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

export type ModelBackend = {
  stream(
    messages: ChatMessage[],
    source: InferenceSource,
    signal: AbortSignal,
    tools?: readonly ToolSpec[],
  ): AsyncIterable<ModelChunk>;
};

export type ModelOptions = {
  /** Delay between echo tokens (ms). */
  echoDelayMs?: number;
  /** Attempts after a retryable failure before the first token (default 2). */
  retries?: number;
  /** First retry delay (ms), doubled per attempt, unless the endpoint sent Retry-After (default 1000). */
  retryBaseMs?: number;
};

export function emptyUsage(): TokenUsage {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, thinking: 0 };
}

/** The backend for a source: `echo` runs offline, anything else is treated as OpenAI-compatible. */
export function backendFor(source: InferenceSource, options: ModelOptions = {}): ModelBackend {
  return source.provider === "echo" ? echoBackend(options.echoDelayMs ?? 5) : openaiBackend;
}

function countWords(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

/** Splits text into word tokens whose concatenation is the text (leading whitespace rides with its word). */
export function wordTokens(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

function abortedError(): InferenceError {
  return new InferenceError("aborted", "The turn was aborted");
}

/** Waits `ms`, or rejects with an `aborted` InferenceError when the signal fires first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortedError());
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError());
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** `/tool <name> <JSON arguments>`: what makes the echo model call a tool. */
const TOOL_COMMAND = /^\/tool\s+([A-Za-z0-9_.-]+)\s*(.*)$/s;

/**
 * Deterministic offline model. It answers `Echo: <last user text>`, one word per token. A user message
 * `/tool <name> <JSON arguments>` makes it call that tool instead (when offered); after tool results it
 * answers `Tool <name> returned: <content>` (or `Tool <name> failed: <content>`), one line per result.
 */
export function echoBackend(delayMs: number): ModelBackend {
  return {
    async *stream(messages, _source, signal, tools = []) {
      const input = messages.reduce((n, m) => n + countWords(m.content), 0);
      const last = messages[messages.length - 1];
      const command = last?.role === "user" ? TOOL_COMMAND.exec(last.content.trim()) : null;
      if (command && tools.some((t) => t.name === command[1])) {
        await sleep(delayMs, signal);
        const name = command[1] as string;
        yield {
          toolCall: { callId: `call_${crypto.randomUUID().slice(0, 8)}`, name, arguments: parseArguments(command[2]) },
        };
        yield { usage: { ...emptyUsage(), input, output: 1 } };
        return;
      }
      const reply = last?.role === "tool" ? toolSummary(messages) : `Echo: ${lastUserText(messages)}`.trim();
      const tokens = wordTokens(reply);
      for (const token of tokens) {
        await sleep(delayMs, signal);
        yield { token };
      }
      yield { usage: { ...emptyUsage(), input, output: tokens.length } };
    },
  };
}

function lastUserText(messages: ChatMessage[]): string {
  return (
    [...messages]
      .reverse()
      .find((m) => m.role === "user")
      ?.content.trim() ?? ""
  );
}

/** The results at the end of the conversation, one line each. */
function toolSummary(messages: ChatMessage[]): string {
  const lines: string[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as ChatMessage;
    if (m.role !== "tool") break;
    lines.unshift(`Tool ${m.name} ${m.isError ? "failed" : "returned"}: ${m.content}`);
  }
  return lines.join("\n");
}

/** A model's arguments text as an object; anything else (not JSON, not an object) is kept as `{input}`. */
export function parseArguments(text: string | undefined): Record<string, unknown> {
  const trimmed = (text ?? "").trim();
  if (!trimmed) return {};
  try {
    const value: unknown = JSON.parse(trimmed);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // not JSON: fall through
  }
  return { input: trimmed };
}

/** Retry-After is either delta-seconds or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function httpError(status: number, body: string, retryAfter: string | null): InferenceError {
  const detail = body.slice(0, 500);
  const message = `HTTP ${status}${detail ? `: ${detail}` : ""}`;
  const extra = { statusCode: status };
  if (status === 401 || status === 403) return new InferenceError("credential_failure", message, extra);
  if (status === 429) {
    const after = retryAfterMs(retryAfter);
    return new InferenceError(
      "quota_exhausted",
      message,
      after === undefined ? extra : { ...extra, retryAfterMs: after },
    );
  }
  if (status === 408) return new InferenceError("timeout", message, extra);
  if (status >= 500) return new InferenceError("retryable", message, extra);
  if (/context_length|maximum context/i.test(body)) return new InferenceError("context_overflow", message, extra);
  return new InferenceError("fatal", message, extra);
}

type OpenAIToolCallDelta = { index?: number; id?: string; function?: { name?: string; arguments?: string } };

type OpenAIChunk = {
  choices?: { delta?: { content?: string | null; tool_calls?: OpenAIToolCallDelta[] | null } }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
    completion_tokens_details?: { reasoning_tokens?: number };
  } | null;
  error?: { message?: string };
};

/**
 * The hub counts each kind of token once (docs/sidecar-protocol.md, "Usage"): OpenAI's prompt tokens include
 * the cached ones and its completion tokens the reasoning ones, so those are taken out.
 */
function toUsage(u: NonNullable<OpenAIChunk["usage"]>): TokenUsage {
  const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
  return {
    input: Math.max(0, (u.prompt_tokens ?? 0) - cached),
    output: Math.max(0, (u.completion_tokens ?? 0) - reasoning),
    cacheRead: cached,
    cacheWrite: 0,
    thinking: reasoning,
  };
}

/** Our conversation in OpenAI's chat format: tool calls on the assistant message, results as `tool` messages. */
function toOpenAIMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  return messages.map((m) => {
    if (m.role === "tool") return { role: "tool", tool_call_id: m.callId, content: m.content };
    if (m.role === "assistant" && m.toolCalls?.length) {
      return {
        role: "assistant",
        content: m.content || null,
        tool_calls: m.toolCalls.map((call) => ({
          id: call.callId,
          type: "function",
          function: { name: call.name, arguments: JSON.stringify(call.arguments) },
        })),
      };
    }
    return { role: m.role, content: m.content };
  });
}

/**
 * Any OpenAI-compatible `POST {baseURL}/chat/completions` with `stream: true` (server-sent events). Tool
 * calls stream as fragments keyed by `index` (the id and name first, then pieces of the arguments); each
 * is yielded whole when the stream ends.
 */
export const openaiBackend: ModelBackend = {
  async *stream(messages, source, signal, tools = []) {
    const url = `${source.baseURL.replace(/\/+$/, "")}/chat/completions`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${source.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: source.model,
          messages: toOpenAIMessages(messages),
          stream: true,
          stream_options: { include_usage: true },
          ...(tools.length
            ? {
                tools: tools.map((t) => ({
                  type: "function",
                  function: { name: t.name, description: t.description, parameters: t.parameters },
                })),
              }
            : {}),
        }),
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw abortedError();
      throw new InferenceError("retryable", `Request failed: ${(error as Error).message}`);
    }
    if (!response.ok || !response.body) {
      const body = await response.text().catch(() => "");
      throw httpError(response.status, body, response.headers.get("retry-after"));
    }

    const decoder = new TextDecoder();
    let buffer = "";
    const calls = new Map<number, { id: string; name: string; arguments: string }>();
    const finished = () =>
      [...calls.entries()]
        .sort(([a], [b]) => a - b)
        .map(([index, call]) => ({
          toolCall: {
            callId: call.id || `call_${index}`,
            name: call.name,
            arguments: parseArguments(call.arguments),
          },
        }));
    try {
      for await (const bytes of response.body) {
        buffer += decoder.decode(bytes, { stream: true });
        let newline = buffer.indexOf("\n");
        while (newline >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          newline = buffer.indexOf("\n");
          if (!line.startsWith("data:")) continue; // comments, `event:` lines, blank separators
          const data = line.slice(5).trim();
          if (data === "[DONE]") {
            yield* finished();
            return;
          }
          let chunk: OpenAIChunk;
          try {
            chunk = JSON.parse(data) as OpenAIChunk;
          } catch {
            throw new InferenceError("protocol_mismatch", `Unparseable stream chunk: ${data.slice(0, 200)}`);
          }
          if (chunk.error) throw new InferenceError("fatal", chunk.error.message ?? "The endpoint reported an error");
          const delta = chunk.choices?.[0]?.delta;
          if (delta?.content) yield { token: delta.content };
          for (const fragment of delta?.tool_calls ?? []) {
            const index = fragment.index ?? 0;
            const call = calls.get(index) ?? { id: "", name: "", arguments: "" };
            if (fragment.id) call.id = fragment.id;
            if (fragment.function?.name) call.name += fragment.function.name;
            if (fragment.function?.arguments) call.arguments += fragment.function.arguments;
            calls.set(index, call);
          }
          if (chunk.usage) yield { usage: toUsage(chunk.usage) };
        }
      }
      yield* finished();
    } catch (error) {
      if (error instanceof InferenceError) throw error;
      if (signal.aborted) throw abortedError();
      throw new InferenceError("retryable", `Stream failed: ${(error as Error).message}`);
    }
  },
};
