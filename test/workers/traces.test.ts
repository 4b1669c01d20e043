/**
 * Traces of turns, from a real instance run through the test sidecar: a `traceparent` on the mail becomes
 * the trace of the turn it starts (and of the later steps of its tool loop), spans for the turn, each model
 * call and each tool call come from the parts and their times, the same trace exports as OTLP/JSON, bad
 * input is a 400 and other tenants see nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, createTenant, expectError } from "./support/api";
import { instancesOf, launch, ok, type Runtime, SLOW, setUpRuntime, tenantBase, until } from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";
const HEX16 = /^[0-9a-f]{16}$/;

type SpanView = {
  spanId: string;
  traceId: string;
  parentSpanId: string | null;
  name: string;
  kind: string;
  turnId: string;
  startTime: string;
  endTime: string | null;
  durationMs: number | null;
  status: string | null;
  statusMessage: string | null;
  attributes: Record<string, unknown>;
};

describe("traces", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let instanceId: string;
  let channel: TestInstanceChannel;
  const base = () => tenantBase(r.t.id);
  const mail = (content: string, headers: Record<string, string> = {}) =>
    api(`${instancesOf(r.t.id)}/${instanceId}/mail`, { token: r.token, body: { content }, headers });
  const turns = async () => (await ok(`${instancesOf(r.t.id)}/${instanceId}/turns`, r.token)).data as any[];

  /** Waits until `count` turns exist and none is running; newest first. */
  const settledTurns = (count: number) =>
    until(`${count} finished turns`, async () => {
      const list = await turns();
      return list.length === count && list.every((t) => t.status !== "running") && list;
    });

  /** A reply in one model call. */
  function reply(text: string) {
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.done", {
      turn: { role: "assistant", content: [{ type: "text", text }], model: "echo" },
      usage: { input: 5, output: 2 },
    });
    channel.event("connector.reply", { content: text });
  }

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
    const launched = await launch(r, sidecar);
    instanceId = launched.instance.id;
    channel = launched.channel;
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("a traceparent on the mail is the trace of the turn it starts and of its tool loop's next step", async () => {
    const sent = await mail("/tool clock {}", { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    // Step 1 asks for a tool; the tool runs; step 2 answers.
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.done", {
      turn: {
        role: "assistant",
        content: [{ type: "tool_call", callId: "call-1", name: "clock", arguments: {} }],
        model: "echo",
      },
      usage: { input: 10, output: 3 },
    });
    channel.event("tool.start", { call: { callId: "call-1", name: "clock", arguments: {} } });
    channel.event("tool.done", { result: { callId: "call-1", content: "2026-12-01T00:00:00Z", isError: false } });
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.done", {
      turn: { role: "assistant", content: [{ type: "text", text: "It is midnight" }], model: "echo" },
      usage: { input: 20, output: 4 },
    });
    channel.event("connector.reply", { content: "It is midnight" });
    await channel.settled();
    const [second, first] = await settledTurns(2);
    expect([first.traceId, second.traceId]).toEqual([TRACE_ID, TRACE_ID]);

    const list = await api(`${base()}/traces?traceId=${TRACE_ID}`, { token: r.token });
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.nextCursor).toBeNull();
    expect(list.body.data.map((s: SpanView) => [s.turnId, s.name, s.parentSpanId, s.status])).toEqual([
      [second.id, "turn", CALLER_SPAN, "ok"],
      [first.id, "turn", CALLER_SPAN, "ok"],
    ]);

    const trace = await api(`${base()}/traces/${TRACE_ID}`, { token: r.token });
    expect(trace.status, JSON.stringify(trace.body)).toBe(200);
    expect(trace.body.traceId).toBe(TRACE_ID);
    const spans = trace.body.spans as SpanView[];
    expect(spans.map((s) => s.name)).toEqual(["turn", "chat echo", "execute_tool clock", "turn", "chat echo"]);
    for (const span of spans) {
      expect(span.traceId).toBe(TRACE_ID);
      expect(span.spanId).toMatch(HEX16);
      expect(span.endTime).not.toBeNull();
      expect(span.durationMs).toBe(Date.parse(span.endTime as string) - Date.parse(span.startTime));
      expect(span.durationMs).toBeGreaterThanOrEqual(0);
      expect(span.status).toBe("ok");
    }
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(5);
    const [turn1, call1, tool, turn2, call2] = spans as [SpanView, SpanView, SpanView, SpanView, SpanView];
    expect([turn1.parentSpanId, turn2.parentSpanId]).toEqual([CALLER_SPAN, CALLER_SPAN]);
    expect([call1.parentSpanId, tool.parentSpanId]).toEqual([turn1.spanId, turn1.spanId]);
    expect(call2.parentSpanId).toBe(turn2.spanId);
    expect(turn1).toMatchObject({
      turnId: first.id,
      kind: "internal",
      attributes: { "agent.id": r.agentId, "agent.instance.id": instanceId, "agent.turn.id": first.id },
    });
    expect(call1).toMatchObject({
      kind: "client",
      attributes: {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "echo",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 3,
      },
    });
    expect(tool.attributes).toEqual({
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": "clock",
      "gen_ai.tool.call.id": "call-1",
    });
    // Spans nest in time: the call and the tool inside the first turn, the tool after the call.
    expect(call1.startTime >= turn1.startTime).toBe(true);
    expect((call1.endTime as string) <= (tool.startTime as string)).toBe(true);
    expect((tool.endTime as string) <= (turn1.endTime as string)).toBe(true);
    expect(turn2.startTime >= (turn1.endTime as string)).toBe(true);
  });

  it("a turn without a traceparent, or with a malformed one, starts a trace of its own", async () => {
    const malformed = [
      null,
      "garbage",
      `00-${TRACE_ID.toUpperCase()}-${CALLER_SPAN}-01`,
      `00-${"0".repeat(32)}-${CALLER_SPAN}-01`,
      `00-${TRACE_ID}-${"0".repeat(16)}-01`,
      `ff-${TRACE_ID}-${CALLER_SPAN}-01`,
      `00-${TRACE_ID}-${CALLER_SPAN}-01-extra`,
    ];
    let count = 2;
    for (const header of malformed) {
      const sent = await mail("hello", header === null ? {} : { traceparent: header });
      expect(sent.status, `${header}: ${JSON.stringify(sent.body)}`).toBe(201);
      reply("hello");
      await channel.settled();
      count += 1;
      const [latest] = await settledTurns(count);
      expect(latest.traceId, String(header)).toBe(latest.id.slice(4));
      const trace = await ok(`${base()}/traces/${latest.traceId}`, r.token);
      expect(trace.spans.map((s: SpanView) => [s.name, s.parentSpanId === null])).toEqual([
        ["turn", true],
        ["chat echo", false],
      ]);
    }
    // A later version's traceparent may carry more fields: its ids still count.
    const future = "4bf92f3577b34da6a3ce929d0e0e4737";
    await mail("hello", { traceparent: `01-${future}-${CALLER_SPAN}-01-whatever` });
    reply("hello");
    await channel.settled();
    const [latest] = await settledTurns(count + 1);
    expect(latest.traceId).toBe(future);
  });

  it("a failed turn's spans say what went wrong", async () => {
    await mail("fail please", { traceparent: `00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-${CALLER_SPAN}-00` });
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.error", { error: { category: "provider_error", message: "upstream 500" } });
    channel.event("connector.reply", { content: "sorry" });
    await channel.settled();
    await until("the failed turn", async () => (await turns())[0]?.status === "failed");
    const trace = await ok(`${base()}/traces/${"a".repeat(32)}`, r.token);
    expect(trace.spans.map((s: SpanView) => [s.name, s.status, s.statusMessage])).toEqual([
      ["turn", "error", "provider_error: upstream 500"],
      ["chat echo", "error", "provider_error: upstream 500"],
    ]);
  });

  it("exports a trace as OTLP/JSON", async () => {
    const res = await api(`${base()}/traces/${TRACE_ID}?format=otlp`, { token: r.token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const json = (await api(`${base()}/traces/${TRACE_ID}`, { token: r.token })).body.spans as SpanView[];
    const [resource] = res.body.resourceSpans;
    expect(resource.resource.attributes).toContainEqual({ key: "service.name", value: { stringValue: "agent-hub" } });
    const [scope] = resource.scopeSpans;
    expect(scope.scope.name).toBe("agent-hub.turns");
    expect(scope.spans).toHaveLength(json.length);
    scope.spans.forEach((span: any, i: number) => {
      const view = json[i] as SpanView;
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.spanId).toBe(view.spanId);
      expect(span.parentSpanId).toBe(view.parentSpanId);
      expect(span.name).toBe(view.name);
      expect(span.kind).toBe(view.kind === "client" ? 3 : 1);
      expect(span.startTimeUnixNano).toBe(`${BigInt(Date.parse(view.startTime)) * 1_000_000n}`);
      expect(span.endTimeUnixNano).toBe(`${BigInt(Date.parse(view.endTime as string)) * 1_000_000n}`);
      expect(span.status).toEqual({ code: 1 });
      for (const attribute of span.attributes) {
        expect(Object.keys(attribute.value)).toHaveLength(1);
        expect(["stringValue", "intValue", "boolValue", "doubleValue"]).toContain(Object.keys(attribute.value)[0]);
      }
    });
    const call = scope.spans.find((s: any) => s.name === "chat echo");
    expect(call.attributes).toContainEqual({ key: "gen_ai.usage.input_tokens", value: { intValue: "10" } });
    const failed = await api(`${base()}/traces/${"a".repeat(32)}?format=otlp`, { token: r.token });
    expect(failed.body.resourceSpans[0].scopeSpans[0].spans[0].status).toEqual({
      code: 2,
      message: "provider_error: upstream 500",
    });
  });

  it("lists turns' traces newest first, filtered by agent, instance, session and time, with the cursor", async () => {
    const all = await ok(`${base()}/traces?limit=100`, r.token);
    const everything = all.data as SpanView[];
    expect(everything.length).toBe((await turns()).length);
    expect(everything.map((s) => s.turnId)).toEqual((await turns()).map((t) => t.id));
    const sessionId = (await ok(`${instancesOf(r.t.id)}/${instanceId}`, r.token)).sessionId;
    for (const query of [`agentId=${r.agentId}`, `instanceId=${instanceId}`, `sessionId=${sessionId}`]) {
      expect((await ok(`${base()}/traces?limit=100&${query}`, r.token)).data).toEqual(everything);
    }
    for (const query of ["agentId=agt_other", "instanceId=ins_other", "sessionId=ses_other"]) {
      expect((await ok(`${base()}/traces?${query}`, r.token)).data).toEqual([]);
    }
    const past = await ok(`${base()}/traces?startTime=2020-01-01T00:00:00Z&endTime=2020-01-02T00:00:00Z`, r.token);
    expect(past.data).toEqual([]);
    const middle = everything[3] as SpanView;
    const newer = await ok(`${base()}/traces?limit=100&startTime=${middle.startTime}`, r.token);
    expect(newer.data.every((s: SpanView) => s.startTime >= middle.startTime)).toBe(true);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await ok(`${base()}/traces?limit=4${cursor ? `&cursor=${cursor}` : ""}`, r.token);
      seen.push(...page.data.map((s: SpanView) => s.turnId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(everything.map((s) => s.turnId));
  });

  it("refuses bad input with 400 and an unknown trace with 404", async () => {
    const get = (path: string) => api(`${base()}${path}`, { token: r.token });
    expectError(await get("/traces/not-a-trace-id"), 400, "validation_failed");
    expectError(await get(`/traces/${TRACE_ID.toUpperCase()}`), 400, "validation_failed");
    expectError(await get(`/traces/${TRACE_ID}?format=xml`), 400, "validation_failed");
    expectError(await get("/traces?traceId=xyz"), 400, "validation_failed");
    expectError(await get("/traces?startTime=tomorrow"), 400, "validation_failed");
    expectError(await get("/traces?startTime=2026-01-02T00:00:00Z&endTime=2026-01-01T00:00:00Z"), 400, "invalid_range");
    expectError(await get("/traces?cursor=bad!cursor"), 400, "invalid_cursor");
    expectError(await get("/traces?limit=1000"), 400, "validation_failed");
    expectError(await get(`/traces/${"b".repeat(32)}`), 404, "not_found");
  });

  it("another tenant sees none of it", async () => {
    const stranger = await createTenant();
    const token = stranger.owner.token;
    expectError(await api(`${tenantBase(stranger.id)}/traces/${TRACE_ID}`, { token }), 404, "not_found");
    expect((await ok(`${tenantBase(stranger.id)}/traces?traceId=${TRACE_ID}`, token)).data).toEqual([]);
    expect((await ok(`${tenantBase(stranger.id)}/traces?instanceId=${instanceId}`, token)).data).toEqual([]);
    expectError(await api(`${base()}/traces/${TRACE_ID}`, { token }), 404, "not_found");
    expectError(await api(`${base()}/traces`, { token }), 404, "not_found");
    expectError(await api(`${base()}/traces`), 401, "unauthorized");
  });
});
