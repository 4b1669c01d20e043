import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceSource, TokenUsage } from "../src/runtime/protocol";
import {
  type ChatMessage,
  echoBackend,
  InferenceError,
  type ModelChunk,
  openaiBackend,
  parseArguments,
  type ToolCall,
  type ToolSpec,
  wordTokens,
} from "./models";

async function collect(
  stream: AsyncIterable<ModelChunk>,
): Promise<{ text: string; tokens: string[]; toolCalls: ToolCall[]; usage?: TokenUsage }> {
  const tokens: string[] = [];
  const toolCalls: ToolCall[] = [];
  let usage: TokenUsage | undefined;
  for await (const chunk of stream) {
    if ("token" in chunk) tokens.push(chunk.token);
    else if ("toolCall" in chunk) toolCalls.push(chunk.toolCall);
    else usage = chunk.usage;
  }
  return { text: tokens.join(""), tokens, toolCalls, ...(usage ? { usage } : {}) };
}

const noteTool: ToolSpec = {
  name: "note",
  description: "Keeps a note",
  parameters: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
};

async function failure(stream: AsyncIterable<ModelChunk>): Promise<InferenceError> {
  try {
    await collect(stream);
  } catch (error) {
    expect(error).toBeInstanceOf(InferenceError);
    return error as InferenceError;
  }
  throw new Error("the stream did not fail");
}

const echoSource: InferenceSource = { id: "echo:echo", provider: "echo", baseURL: "", apiKey: "", model: "echo" };

describe("echo model", () => {
  const messages: ChatMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "first question" },
    { role: "assistant", content: "Echo: first question" },
    { role: "user", content: "  how are   you today?  " },
  ];

  it("answers `Echo: <last user text>` word by word and counts words as tokens", async () => {
    const result = await collect(echoBackend(1).stream(messages, echoSource, new AbortController().signal));
    expect(result.text).toBe("Echo: how are   you today?");
    expect(result.tokens).toEqual(["Echo:", " how", " are", "   you", " today?"]);
    // input: 2 + 2 + 3 + 4 words; output: 5 tokens
    expect(result.usage).toEqual({ input: 11, output: 5, cacheRead: 0, cacheWrite: 0, thinking: 0 });
  });

  it("is deterministic", async () => {
    const signal = new AbortController().signal;
    const a = await collect(echoBackend(0).stream(messages, echoSource, signal));
    const b = await collect(echoBackend(0).stream(messages, echoSource, signal));
    expect(a).toEqual(b);
  });

  it("stops with an `aborted` error when the signal fires", async () => {
    const controller = new AbortController();
    const long: ChatMessage[] = [{ role: "user", content: "word ".repeat(200) }];
    const tokens: string[] = [];
    const error = await failure(
      (async function* () {
        for await (const chunk of echoBackend(2).stream(long, echoSource, controller.signal)) {
          if ("token" in chunk) tokens.push(chunk.token);
          if (tokens.length === 3) controller.abort();
          yield chunk;
        }
      })(),
    );
    expect(error.category).toBe("aborted");
    expect(tokens.length).toBe(3);
  });

  it("calls a tool on `/tool <name> <json>` when it is offered, and reads the results back", async () => {
    const signal = new AbortController().signal;
    const asked: ChatMessage[] = [{ role: "user", content: '/tool note {"text":"buy milk"}' }];
    const call = await collect(echoBackend(0).stream(asked, echoSource, signal, [noteTool]));
    expect(call.text).toBe("");
    expect(call.toolCalls).toEqual([
      { callId: expect.stringMatching(/^call_/), name: "note", arguments: { text: "buy milk" } },
    ]);
    // Not offered: it is just text to echo.
    expect((await collect(echoBackend(0).stream(asked, echoSource, signal))).toolCalls).toEqual([]);

    const callId = call.toolCalls[0]?.callId as string;
    const after: ChatMessage[] = [
      ...asked,
      { role: "assistant", content: "", toolCalls: call.toolCalls },
      { role: "tool", callId, name: "note", content: "Noted (1): buy milk", isError: false },
    ];
    expect((await collect(echoBackend(0).stream(after, echoSource, signal, [noteTool]))).text).toBe(
      "Tool note returned: Noted (1): buy milk",
    );
    const refused: ChatMessage[] = [
      ...after.slice(0, 2),
      { role: "tool", callId, name: "note", content: "Not allowed", isError: true },
    ];
    expect((await collect(echoBackend(0).stream(refused, echoSource, signal, [noteTool]))).text).toBe(
      "Tool note failed: Not allowed",
    );
  });

  it("reads tool arguments as an object, keeping anything else as input", () => {
    expect(parseArguments('{"a":1}')).toEqual({ a: 1 });
    expect(parseArguments("")).toEqual({});
    expect(parseArguments("[1,2]")).toEqual({ input: "[1,2]" });
    expect(parseArguments("plain words")).toEqual({ input: "plain words" });
  });

  it("splits text into tokens that join back to it", () => {
    expect(wordTokens("a  b\nc")).toEqual(["a", "  b", "\nc"]);
    expect(wordTokens("")).toEqual([]);
  });
});

describe("OpenAI-compatible model", () => {
  type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
  let server: Server;
  let baseURL: string;
  let handler: Handler;
  const requests: { path: string; authorization: string | undefined; body: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        requests.push({ path: req.url ?? "", authorization: req.headers.authorization, body: JSON.parse(body) });
        handler(req, body, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const source = (): InferenceSource => ({
    id: "openai:gpt-test",
    provider: "openai",
    baseURL,
    apiKey: "sk-test-key",
    model: "gpt-test",
  });
  const messages: ChatMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Say hello" },
  ];

  const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;

  it("streams the deltas and the usage of the last chunk, and stops at [DONE]", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": keep-alive comment\n\n");
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: "assistant" } }] })}\n\n`);
      res.write(chunk("Hel"));
      // A line split across two network writes must still parse.
      const split = chunk("lo, ");
      res.write(split.slice(0, 10));
      setTimeout(() => {
        res.write(split.slice(10));
        res.write(chunk("world"));
        res.write(
          `data: ${JSON.stringify({
            choices: [],
            usage: {
              prompt_tokens: 12,
              completion_tokens: 3,
              prompt_tokens_details: { cached_tokens: 4 },
              completion_tokens_details: { reasoning_tokens: 1 },
            },
          })}\r\n\r\n`,
        );
        res.write("data: [DONE]\n\n");
        res.write(chunk("after done is ignored"));
        res.end();
      }, 10);
    };
    const result = await collect(openaiBackend.stream(messages, source(), new AbortController().signal));
    expect(result.tokens).toEqual(["Hel", "lo, ", "world"]);
    // Each token counted once: 12 prompt tokens of which 4 cached, 3 completion tokens of which 1 reasoning.
    expect(result.usage).toEqual({ input: 8, output: 2, cacheRead: 4, cacheWrite: 0, thinking: 1 });

    const request = requests.at(-1);
    expect(request?.path).toBe("/v1/chat/completions");
    expect(request?.authorization).toBe("Bearer sk-test-key");
    expect(request?.body).toEqual({
      model: "gpt-test",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("offers tools, assembles streamed tool calls, and sends calls and results back in OpenAI's format", async () => {
    const toolChunk = (delta: unknown) =>
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { tool_calls: [delta] } }] })}\n\n`;
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(toolChunk({ index: 0, id: "call_a", type: "function", function: { name: "note", arguments: "" } }));
      res.write(toolChunk({ index: 1, id: "call_b", type: "function", function: { name: "clock", arguments: "{}" } }));
      res.write(toolChunk({ index: 0, function: { arguments: '{"text":' } }));
      res.write(toolChunk({ index: 0, function: { arguments: '"buy milk"}' } }));
      res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 20, completion_tokens: 9 } })}\n\n`);
      res.end("data: [DONE]\n\n");
    };
    const result = await collect(openaiBackend.stream(messages, source(), new AbortController().signal, [noteTool]));
    expect(result.text).toBe("");
    expect(result.toolCalls).toEqual([
      { callId: "call_a", name: "note", arguments: { text: "buy milk" } },
      { callId: "call_b", name: "clock", arguments: {} },
    ]);
    expect(requests.at(-1)?.body.tools).toEqual([
      { type: "function", function: { name: "note", description: "Keeps a note", parameters: noteTool.parameters } },
    ]);

    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`${chunk("Done.")}data: [DONE]\n\n`);
    };
    const followUp: ChatMessage[] = [
      ...messages,
      { role: "assistant", content: "", toolCalls: result.toolCalls.slice(0, 1) },
      { role: "tool", callId: "call_a", name: "note", content: "Noted (1): buy milk", isError: false },
    ];
    expect((await collect(openaiBackend.stream(followUp, source(), new AbortController().signal))).text).toBe("Done.");
    expect(requests.at(-1)?.body.messages).toEqual([
      ...messages,
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_a", type: "function", function: { name: "note", arguments: '{"text":"buy milk"}' } }],
      },
      { role: "tool", tool_call_id: "call_a", content: "Noted (1): buy milk" },
    ]);
    expect(requests.at(-1)?.body).not.toHaveProperty("tools");
  });

  it("maps 401 and 403 to credential_failure", async () => {
    for (const status of [401, 403]) {
      handler = (_req, _body, res) =>
        res.writeHead(status, { "content-type": "application/json" }).end('{"error":"no"}');
      const error = await failure(openaiBackend.stream(messages, source(), new AbortController().signal));
      expect(error.category).toBe("credential_failure");
      expect(error.statusCode).toBe(status);
      expect(error.message).not.toContain("sk-test-key");
    }
  });

  it("maps 429 to quota_exhausted with Retry-After in milliseconds", async () => {
    handler = (_req, _body, res) => res.writeHead(429, { "retry-after": "2" }).end("slow down");
    const error = await failure(openaiBackend.stream(messages, source(), new AbortController().signal));
    expect(error.category).toBe("quota_exhausted");
    expect(error.retryAfterMs).toBe(2000);
    expect(error.message).toContain("slow down");
  });

  it("maps 5xx to retryable and other 4xx to fatal (context length to context_overflow)", async () => {
    handler = (_req, _body, res) => res.writeHead(503).end("busy");
    expect((await failure(openaiBackend.stream(messages, source(), new AbortController().signal))).category).toBe(
      "retryable",
    );
    handler = (_req, _body, res) => res.writeHead(400).end('{"error":{"code":"context_length_exceeded"}}');
    expect((await failure(openaiBackend.stream(messages, source(), new AbortController().signal))).category).toBe(
      "context_overflow",
    );
    handler = (_req, _body, res) => res.writeHead(404).end("no such model");
    expect((await failure(openaiBackend.stream(messages, source(), new AbortController().signal))).category).toBe(
      "fatal",
    );
  });

  it("reports an unreachable endpoint as retryable", async () => {
    const closed = { ...source(), baseURL: "http://127.0.0.1:1/v1" };
    const error = await failure(openaiBackend.stream(messages, closed, new AbortController().signal));
    expect(error.category).toBe("retryable");
  });

  it("stops mid-stream with `aborted` when the signal fires", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk("first"));
      // …and never finishes.
    };
    const controller = new AbortController();
    const tokens: string[] = [];
    const error = await failure(
      (async function* () {
        for await (const c of openaiBackend.stream(messages, source(), controller.signal)) {
          if ("token" in c) tokens.push(c.token);
          controller.abort();
          yield c;
        }
      })(),
    );
    expect(error.category).toBe("aborted");
    expect(tokens).toEqual(["first"]);
  });
});
