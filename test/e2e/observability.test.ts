/**
 * Observability end to end (docs/observability.md): the real reference sidecar runs agents on the shared
 * hub. A caller's `traceparent` starts an echo turn; its trace (also as OTLP/JSON, checked against the OTLP
 * JSON schema), the logs of the hub and of the sidecar, and the metrics are read back through the API. A
 * second agent, whose model endpoint keeps failing, shows the sidecar's warnings and error and the level
 * filter.
 */
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { client } from "./support/hub-client";
import {
  instancePath,
  type RuntimeTenant,
  runSidecar,
  setUpRuntimeTenant,
  until,
  waitOnline,
} from "./support/runtime-tenant";

const hubUrl = inject("hubUrl");
const hub = client(hubUrl);

type LogEntry = {
  id: string;
  timestamp: string;
  level: "debug" | "info" | "warn" | "error";
  source: "hub" | "sidecar";
  message: string;
  metadata: Record<string, unknown> | null;
  agentId: string;
  instanceId: string;
};

type Span = {
  spanId: string;
  traceId: string;
  parentSpanId: string | null;
  name: string;
  kind: "internal" | "client";
  turnId: string;
  startTime: string;
  endTime: string | null;
  durationMs: number | null;
  status: "ok" | "error" | null;
  statusMessage: string | null;
  attributes: Record<string, string | number | boolean>;
};

type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano?: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  status: { code?: number; message?: string };
};

const schema = JSON.parse(await readFile(new URL("./support/otlp-trace.schema.json", import.meta.url), "utf8"));
const validateOtlp = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

/** What `?format=otlp` must say for a span of the JSON trace (docs/observability.md, "OTLP"). */
function asOtlp(span: Span) {
  const nanos = (iso: string) => (BigInt(Date.parse(iso)) * 1_000_000n).toString();
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    name: span.name,
    kind: { internal: 1, client: 3 }[span.kind],
    startTimeUnixNano: nanos(span.startTime),
    ...(span.endTime ? { endTimeUnixNano: nanos(span.endTime) } : {}),
    status: span.status
      ? { code: span.status === "ok" ? 1 : 2, ...(span.statusMessage ? { message: span.statusMessage } : {}) }
      : {},
  };
}

describe("observability of a real run", () => {
  let s: RuntimeTenant;
  let sidecar: ReturnType<typeof runSidecar>;
  let base: string;

  beforeAll(async () => {
    s = await setUpRuntimeTenant(hubUrl);
    base = `/api/tenants/${s.tenantId}`;
    sidecar = runSidecar(hubUrl, s);
    await waitOnline(hubUrl, s);
  });

  afterAll(async () => {
    await sidecar?.stop();
    await rm(s.stateDir, { recursive: true, force: true });
  });

  async function launch(agentId: string): Promise<string> {
    const launched = await hub.call("POST", `${base}/agents/instances`, s.owner.token, { agentId });
    expect(launched.status, JSON.stringify(launched.body) + sidecar.output()).toBe(201);
    return launched.body.id as string;
  }

  /** Mails the instance and waits until the hub holds the turn it started and the reply; answers the turn. */
  async function mailAndWait(id: string, content: string, headers: Record<string, string> = {}) {
    const sent = await fetch(`${hubUrl}${instancePath(s, id)}/mail`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.owner.token}`, "content-type": "application/json", ...headers },
      body: JSON.stringify({ content }),
    });
    expect(sent.status, await sent.clone().text()).toBe(201);
    // The turn is over and the reply is recorded: what the metrics count.
    await until(
      "the turn to end and its reply mail",
      async () => {
        const turns = await hub.ok("GET", `${instancePath(s, id)}/turns`, s.owner.token);
        const mail = await hub.ok("GET", `${instancePath(s, id)}/mail`, s.owner.token);
        return turns.data[0]?.endedAt && mail.data.some((m: { direction: string }) => m.direction === "outbound");
      },
      20_000,
      100,
    );
    return (await hub.ok("GET", `${instancePath(s, id)}/turns`, s.owner.token)).data[0];
  }

  async function logs(path: string, query = ""): Promise<LogEntry[]> {
    const page = await hub.call("GET", `${base}${path}/logs${query}`, s.owner.token);
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    return page.body.data;
  }

  async function trace(traceId: string) {
    const json = await hub.call("GET", `${base}/traces/${traceId}`, s.owner.token);
    expect(json.status, JSON.stringify(json.body)).toBe(200);
    const otlp = await hub.call("GET", `${base}/traces/${traceId}?format=otlp`, s.owner.token);
    expect(otlp.status, JSON.stringify(otlp.body)).toBe(200);
    expect(otlp.headers.get("content-type")).toMatch(/^application\/json/);
    // Valid OTLP/JSON, and the same spans as the JSON view.
    expect(validateOtlp(otlp.body), JSON.stringify(validateOtlp.errors)).toBe(true);
    const spans = json.body.spans as Span[];
    const otlpSpans = otlp.body.resourceSpans[0].scopeSpans[0].spans as OtlpSpan[];
    expect(otlpSpans.map(({ attributes: _, ...rest }) => rest)).toEqual(spans.map(asOtlp));
    return { spans, otlp: otlp.body, otlpSpans };
  }

  let echoInstance: string;
  let echoTurn: { id: string; inputTokens: number; outputTokens: number; cost: string };

  it("a caller's traceparent: the turn is in its trace, as JSON and as OTLP/JSON", async () => {
    echoInstance = await launch(s.agentId);
    const traceId = randomBytes(16).toString("hex");
    const callerSpan = randomBytes(8).toString("hex");
    const turn = await mailAndWait(echoInstance, "what time is it?", { traceparent: `00-${traceId}-${callerSpan}-01` });
    echoTurn = turn;
    // The echo model counts the words it read (system prompt and message) and the words it wrote.
    expect(turn).toMatchObject({ status: "completed", model: "echo", traceId, inputTokens: 10, outputTokens: 5 });

    const { spans, otlp, otlpSpans } = await trace(traceId);
    expect(spans.map((x) => x.name)).toEqual(["turn", "chat echo"]);
    const [turnSpan, chat] = spans as [Span, Span];
    expect(turnSpan).toMatchObject({
      traceId,
      parentSpanId: callerSpan,
      kind: "internal",
      turnId: turn.id,
      status: "ok",
      attributes: {
        "agent.id": s.agentId,
        "agent.instance.id": echoInstance,
        "agent.turn.id": turn.id,
        "agent.turn.status": "completed",
        "gen_ai.request.model": "echo",
      },
    });
    expect(turnSpan.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(chat).toMatchObject({
      traceId,
      parentSpanId: turnSpan.spanId,
      kind: "client",
      status: "ok",
      attributes: {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "echo",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
      },
    });
    // The model call lies within its turn.
    expect(Date.parse(chat.startTime)).toBeGreaterThanOrEqual(Date.parse(turnSpan.startTime));
    expect(Date.parse(chat.endTime as string)).toBeLessThanOrEqual(Date.parse(turnSpan.endTime as string));
    expect(turnSpan.durationMs).toBe(Date.parse(turnSpan.endTime as string) - Date.parse(turnSpan.startTime));

    expect(otlp.resourceSpans[0].resource.attributes).toContainEqual({
      key: "service.name",
      value: { stringValue: "agent-hub" },
    });
    expect(otlp.resourceSpans[0].scopeSpans[0].scope.name).toBe("agent-hub.turns");
    expect(otlpSpans[1]?.attributes).toContainEqual({ key: "gen_ai.usage.input_tokens", value: { intValue: "10" } });
    // The schema is not a rubber stamp: what collectors refuse (an enum by name, a base64 id) fails it.
    const named = structuredClone(otlp);
    named.resourceSpans[0].scopeSpans[0].spans[0].kind = "SPAN_KIND_INTERNAL";
    expect(validateOtlp(named)).toBe(false);
    const base64 = structuredClone(otlp);
    base64.resourceSpans[0].scopeSpans[0].spans[0].traceId = Buffer.from(traceId, "hex").toString("base64");
    expect(validateOtlp(base64)).toBe(false);

    const listed = await hub.ok("GET", `${base}/traces?instanceId=${echoInstance}`, s.owner.token);
    expect(listed.data.map((x: Span) => [x.traceId, x.name, x.turnId])).toEqual([[traceId, "turn", turn.id]]);
    const unknown = await hub.call("GET", `${base}/traces/${randomBytes(16).toString("hex")}`, s.owner.token);
    expect(unknown.status).toBe(404);
  });

  it("logs: the hub's entries and the sidecar's lines, newest first, for the instance and its agent", async () => {
    const synced = await hub.call("POST", `${instancePath(s, echoInstance)}/sync`, s.owner.token);
    expect(synced.status).toBe(202);
    const path = `/agents/instances/${echoInstance}`;
    await until("the sidecar's state push line", async () =>
      (await logs(path)).some((e) => e.source === "sidecar" && e.message.startsWith("State pushed")),
    );
    const entries = await logs(path);
    for (const entry of entries) expect(entry).toMatchObject({ agentId: s.agentId, instanceId: echoInstance });
    // Newest first; within one instance no two entries share a millisecond.
    const times = entries.map((e) => Date.parse(e.timestamp));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(new Set(times).size).toBe(times.length);

    const oldestFirst = [...entries].reverse();
    const hubLines = oldestFirst.filter((e) => e.source === "hub").map((e) => e.message);
    const sidecarLines = oldestFirst.filter((e) => e.source === "sidecar");
    expect(hubLines.slice(0, 3)).toEqual([
      `Launching on sidecar ${s.sidecarId}`,
      "Deployed: the sidecar acknowledged with the instance's key",
      "Running: the sidecar started the session",
    ]);
    const pushed = oldestFirst.find((e) => e.source === "hub" && e.message.startsWith("State pushed"));
    expect(pushed?.metadata).toMatchObject({
      ref: "refs/heads/main",
      commitSha: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    // Both sides name the same commit.
    expect(sidecarLines.map((e) => [e.level, e.message])).toEqual([
      ["info", `Deployed agent ${s.agentId} with model echo`],
      ["info", "Started: taking mail"],
      ["info", pushed?.message],
    ]);
    expect(sidecarLines[0]?.metadata).toEqual({ agentId: s.agentId, model: "echo", restoredMessages: 0 });

    // A run that went well has nothing at warn or above.
    expect(await logs(path, "?level=warn")).toEqual([]);
    // The agent's logs are its instances' (one here).
    expect(await logs(`/agents/${s.agentId}`)).toEqual(entries);
    expect(await logs(`/agents/${s.agentId}`, "?level=info")).toEqual(entries);
  });

  it("metrics count the turn's messages and tokens", async () => {
    const metrics = await hub.call("GET", `${base}/agents/${s.agentId}/metrics`, s.owner.token);
    expect(metrics.status, JSON.stringify(metrics.body)).toBe(200);
    expect(metrics.body).toMatchObject({
      agentId: s.agentId,
      messageCount: 2,
      messages: { inbound: 1, outbound: 1 },
      turns: 1,
      failedTurns: 0,
      errorRate: 0,
      tokenUsage: { input: 10, output: 5, cacheRead: 0, cacheWrite: 0, thinking: 0, total: 15 },
    });
    expect(Number(metrics.body.cost)).toBe(Number(echoTurn.cost));
    expect(metrics.body.latencyMs.p50).toEqual(expect.any(Number));
    // A range that ends before the turn has none of it.
    const before = await hub.ok(
      "GET",
      `${base}/agents/${s.agentId}/metrics?to=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}`,
      s.owner.token,
    );
    expect(before).toMatchObject({ messageCount: 0, turns: 0, tokenUsage: { total: 0 } });
  });

  describe("a model endpoint that keeps failing", () => {
    let endpoint: Server;
    let requests = 0;

    beforeAll(async () => {
      // An OpenAI-compatible endpoint that is always overloaded: the sidecar retries, then gives up.
      endpoint = createServer((req, res) => {
        req.resume();
        requests += 1;
        res.writeHead(503, { "content-type": "application/json" }).end('{"error":{"message":"overloaded"}}');
      });
      await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    });

    afterAll(async () => {
      endpoint.closeAllConnections();
      await new Promise<void>((resolve) => endpoint.close(() => resolve()));
    });

    it("the sidecar's warnings and error, the level filter, an error span and the tenant's error rate", async () => {
      const port = (endpoint.address() as AddressInfo).port;
      const provider = await hub.ok("POST", `${base}/providers`, s.owner.token, {
        name: "flaky",
        plugin: "openai",
        metadata: { baseURL: `http://127.0.0.1:${port}/v1` },
      });
      await hub.ok("POST", `${base}/credentials`, s.owner.token, {
        name: "flaky-key",
        type: "api_key",
        providerId: provider.id,
        secret: "sk-test",
      });
      const agent = await hub.ok("POST", `${base}/agents/definitions`, s.owner.token, {
        name: "Flaky",
        systemPrompt: "You answer.",
        modelConfig: { defaultModel: "gpt-test" },
        credentialRequirements: [{ providerName: "flaky", source: "tenant" }],
      });
      const id = await launch(agent.id);
      const turn = await mailAndWait(id, "are you there?");
      expect(turn).toMatchObject({ status: "failed", model: "gpt-test" });
      expect(requests).toBe(3); // the first call and two retries

      const path = `/agents/instances/${id}`;
      const all = await logs(path);
      const warned = await logs(path, "?level=warn");
      expect(warned).toEqual(all.filter((e) => e.level === "warn" || e.level === "error"));
      expect(
        [...warned].reverse().map((e) => [e.source, e.level, e.message.replace(/HTTP 503.*/s, "HTTP 503")]),
      ).toEqual([
        ["sidecar", "warn", "Model call to gpt-test failed (retryable), retrying in 1000 ms: HTTP 503"],
        ["sidecar", "warn", "Model call to gpt-test failed (retryable), retrying in 2000 ms: HTTP 503"],
        ["sidecar", "error", "Model call to gpt-test failed: retryable: HTTP 503"],
        ["hub", "error", `Turn ${turn.id} failed: retryable: HTTP 503`],
      ]);
      expect(all.some((e) => e.level === "info")).toBe(true);
      expect((await logs(path, "?level=error")).map((e) => e.level)).toEqual(["error", "error"]);
      expect(await logs(`/agents/${agent.id}`, "?level=warn")).toEqual(warned);
      const invalid = await hub.call("GET", `${base}${path}/logs?level=loud`, s.owner.token);
      expect(invalid.status).toBe(400);

      // Without a caller's context the turn starts its own trace, and the failed call is an error span.
      const { spans, otlpSpans } = await trace(turn.traceId);
      expect(spans.map((x) => [x.name, x.parentSpanId === null, x.status])).toEqual([
        ["turn", true, "error"],
        ["chat gpt-test", false, "error"],
      ]);
      expect(spans[1]?.statusMessage).toContain("HTTP 503");
      expect(otlpSpans.map((x) => x.status.code)).toEqual([2, 2]);

      const tenant = await hub.call("GET", `${base}/metrics`, s.owner.token);
      expect(tenant.status, JSON.stringify(tenant.body)).toBe(200);
      expect(tenant.body).toMatchObject({
        agentId: null,
        messageCount: 4,
        messages: { inbound: 2, outbound: 2 },
        turns: 2,
        failedTurns: 1,
        errorRate: 0.5,
        tokenUsage: { input: 10, output: 5, total: 15 },
      });
      const flaky = await hub.ok("GET", `${base}/agents/${agent.id}/metrics`, s.owner.token);
      expect(flaky).toMatchObject({ turns: 1, failedTurns: 1, errorRate: 1, tokenUsage: { total: 0 } });
    });
  });
});
