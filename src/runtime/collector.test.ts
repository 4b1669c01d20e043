/**
 * The event collector against real D1. Tenant, agent, session and instance rows are inserted directly:
 * this tests the domain code, not the launch route.
 */
import { env } from "cloudflare:workers";
import { asc, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "../db/client";
import { agent, agentInstance, agentSession, inferenceTurn, principal, tenant, turnPart } from "../db/schema";
import { newId } from "../lib/ids";
import { type ApplyResult, type CollectorState, deriveStatus, EventCollector, type RuntimeStatus } from "./collector";
import type { InferenceEvent } from "./protocol";

const db = getDb(env);

async function makeInstance() {
  const tenantId = newId("tenant");
  const slug = `col-${tenantId.slice(4, 16)}`;
  const userPrincipalId = newId("principal");
  const agentId = newId("agent");
  const agentPrincipalId = newId("principal");
  const sessionId = newId("session");
  const instanceId = newId("instance");
  await db.batch([
    db.insert(tenant).values({ id: tenantId, name: slug, slug, domain: `${slug}.localhost` }),
    db.insert(principal).values({ id: userPrincipalId, tenantId, kind: "user", refId: `user-${userPrincipalId}` }),
    db.insert(agent).values({ id: agentId, tenantId, creatorPrincipalId: userPrincipalId, name: "collector" }),
    db.insert(principal).values({ id: agentPrincipalId, tenantId, kind: "agent", refId: instanceId }),
    db.insert(agentSession).values({ id: sessionId, tenantId, agentId, principalId: userPrincipalId }),
    db.insert(agentInstance).values({
      id: instanceId,
      agentId,
      tenantId,
      principalId: agentPrincipalId,
      address: `${instanceId}@${slug}.localhost`,
      sessionId,
      status: "running",
    }),
  ]);
  return { tenantId, sessionId, instanceId };
}

async function newCollector() {
  return EventCollector.create(await makeInstance());
}

let seq = 0;
const ev = (type: string, data: Record<string, unknown> = {}): InferenceEvent => ({ type, seq: ++seq, data });

const start = (model = "echo:echo") => ev("inference.start", { model });
const done = (content: unknown[], usage?: Record<string, number>) =>
  ev("inference.done", { turn: { role: "assistant", content, model: "echo:echo" }, ...(usage ? { usage } : {}) });
const reply = (content = "Hello there") => ev("connector.reply", { content });
const toolDone = (callId: string, content: unknown, isError = false) =>
  ev("tool.done", { result: { callId, content, isError } });

async function applyAll(collector: EventCollector, events: InferenceEvent[]): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  for (const event of events) results.push(await collector.apply(db, event));
  return results;
}

const committedOf = (results: ApplyResult[]) => results.flatMap((r) => (r.committed ? [r.committed] : []));

async function turnsOf(instanceId: string) {
  return db
    .select()
    .from(inferenceTurn)
    .where(eq(inferenceTurn.instanceId, instanceId))
    .orderBy(asc(inferenceTurn.startedAt), asc(inferenceTurn.id));
}

async function partsOf(turnId: string) {
  return db.select().from(turnPart).where(eq(turnPart.turnId, turnId)).orderBy(asc(turnPart.ordinal));
}

async function sessionPartCount(sessionId: string) {
  return (await db.select().from(turnPart).where(eq(turnPart.sessionId, sessionId))).length;
}

describe("collector: turns and parts", () => {
  it("inference.start creates a running turn and a step-start part; reactor.start alone creates nothing", async () => {
    const c = await newCollector();
    const ids = c.serializeState();
    await c.apply(db, ev("reactor.start"));
    expect(await turnsOf(ids.instanceId)).toEqual([]);

    const before = Date.now();
    await c.apply(db, start("openai:gpt-4o-mini"));
    const [turn, ...more] = await turnsOf(ids.instanceId);
    expect(more).toEqual([]);
    expect(turn).toMatchObject({
      id: c.currentTurnId,
      sessionId: ids.sessionId,
      tenantId: ids.tenantId,
      model: "openai:gpt-4o-mini",
      status: "running",
      endedAt: null,
      inputTokens: 0,
      outputTokens: 0,
    });
    expect(turn?.id).toMatch(/^itn_[0-9a-f]{32}$/);
    expect(turn?.startedAt.getTime()).toBeGreaterThanOrEqual(before);
    const parts = await partsOf(turn?.id as string);
    expect(parts.map((p) => [p.type, p.ordinal, p.metadata])).toEqual([
      ["step-start", 0, { model: "openai:gpt-4o-mini" }],
    ]);
    expect(parts[0]?.id).toMatch(/^tp_[0-9a-f]{32}$/);
  });

  it("inference.done stores text, reasoning, refusal, tool-call and file parts, then step-finish", async () => {
    const c = await newCollector();
    await c.apply(db, start());
    await c.apply(
      db,
      done([
        { type: "thinking", thinking: "Let me think" },
        { type: "redacted_thinking", data: "xxx" },
        { type: "text", text: "Answer." },
        { type: "refusal", reason: "Not allowed" },
        { type: "tool_call", callId: "call_1", name: "search", arguments: { q: "weather" } },
        { type: "tool_result", callId: "call_1", content: "ignored" },
        { type: "image", mimeType: "image/png", data: "iVBORw0KGgo=" },
        { type: "document", mimeType: "application/pdf", reference: "r2://blobs/a.pdf" },
        { type: "audio", mimeType: "audio/ogg", url: "https://example.test/a.ogg" },
        { type: "citation", url: "https://example.test" },
      ]),
    );
    const parts = await partsOf(c.currentTurnId as string);
    expect(parts.map((p) => ({ type: p.type, ordinal: p.ordinal, content: p.content, metadata: p.metadata }))).toEqual([
      { type: "step-start", ordinal: 0, content: null, metadata: { model: "echo:echo" } },
      { type: "reasoning", ordinal: 1, content: "Let me think", metadata: null },
      { type: "text", ordinal: 2, content: "Answer.", metadata: null },
      { type: "refusal", ordinal: 3, content: "Not allowed", metadata: null },
      {
        type: "tool",
        ordinal: 4,
        content: null,
        metadata: { kind: "call", callId: "call_1", name: "search", arguments: { q: "weather" } },
      },
      { type: "file", ordinal: 5, content: null, metadata: { kind: "base64", mimeType: "image/png", dataLength: 12 } },
      {
        type: "file",
        ordinal: 6,
        content: null,
        metadata: { kind: "file-reference", mimeType: "application/pdf", reference: "r2://blobs/a.pdf" },
      },
      {
        type: "file",
        ordinal: 7,
        content: null,
        metadata: { kind: "url", mimeType: "audio/ogg", url: "https://example.test/a.ogg" },
      },
      { type: "step-finish", ordinal: 8, content: null, metadata: null },
    ]);
  });

  it("tool.done stores a result part; deltas are never stored; ordinals count from 0 in each turn", async () => {
    const c = await newCollector();
    const { instanceId } = c.serializeState();
    await applyAll(c, [
      start(),
      ev("inference.text.delta", { token: "Hel", partial: "Hel" }),
      ev("inference.thinking.delta", { token: "hmm", partial: "hmm" }),
      ev("inference.text.delta", { token: "lo", partial: "Hello" }),
    ]);
    expect(c.accumulatedText).toBe("Hello");
    const first = c.currentTurnId as string;
    expect((await partsOf(first)).map((p) => p.type)).toEqual(["step-start"]);
    await applyAll(c, [
      done([
        { type: "text", text: "Hello" },
        { type: "tool_call", callId: "c1", name: "lookup", arguments: { id: 7 } },
      ]),
      toolDone("c1", { found: true }),
      start(),
      done([{ type: "text", text: "Done" }]),
    ]);
    expect((await partsOf(first)).map((p) => [p.ordinal, p.type, p.metadata?.kind ?? null])).toEqual([
      [0, "step-start", null],
      [1, "text", null],
      [2, "tool", "call"],
      [3, "step-finish", null],
      [4, "tool", "result"],
    ]);
    expect((await partsOf(first))[4]?.metadata).toEqual({
      kind: "result",
      callId: "c1",
      content: { found: true },
      isError: false,
    });
    expect((await partsOf(c.currentTurnId as string)).map((p) => [p.ordinal, p.type])).toEqual([
      [0, "step-start"],
      [1, "text"],
      [2, "step-finish"],
    ]);
    const turns = await turnsOf(instanceId);
    expect(turns.map((t) => t.status)).toEqual(["completed", "running"]);
  });

  it("reactor.done completes the turn with endedAt; a fatal reactor.error fails it; a non-fatal one does not", async () => {
    const a = await newCollector();
    await applyAll(a, [start(), done([{ type: "text", text: "ok" }])]);
    const turnA = a.currentTurnId as string;
    await a.apply(db, ev("reactor.done"));
    const [rowA] = await turnsOf(a.serializeState().instanceId);
    expect(rowA).toMatchObject({ id: turnA, status: "completed" });
    expect(rowA?.endedAt).toBeInstanceOf(Date);
    expect(a.currentTurnId).toBeNull();

    const b = await newCollector();
    await applyAll(b, [start(), ev("reactor.error", { error: "loop crashed", fatal: false })]);
    const turnB = b.currentTurnId as string;
    expect((await turnsOf(b.serializeState().instanceId))[0]).toMatchObject({ status: "running", endedAt: null });
    await b.apply(db, ev("reactor.error", { error: { message: "gone for good" }, fatal: true }));
    const [rowB] = await turnsOf(b.serializeState().instanceId);
    expect(rowB).toMatchObject({ id: turnB, status: "failed" });
    expect(rowB?.endedAt).toBeInstanceOf(Date);
    expect((await partsOf(turnB)).filter((p) => p.type === "error")).toMatchObject([
      { content: "loop crashed", metadata: { category: "reactor_error" } },
      { content: "gone for good", metadata: { category: "reactor_error" } },
    ]);
  });

  it("a turn that recorded an error is failed however it ends: reactor.done or the next step", async () => {
    const a = await newCollector();
    const failed = { category: "rate_limit", message: "slow down", statusCode: 429 };
    await applyAll(a, [start(), ev("inference.error", { error: failed }), ev("reactor.done")]);
    const [rowA] = await turnsOf(a.serializeState().instanceId);
    expect(rowA).toMatchObject({ status: "failed" });
    expect(rowA?.endedAt).toBeInstanceOf(Date);

    const b = await newCollector();
    const results = await applyAll(b, [
      start(),
      ev("inference.error", { error: failed }),
      start(),
      done([{ type: "text", text: "second try" }]),
      ev("reactor.done"),
    ]);
    const turns = await turnsOf(b.serializeState().instanceId);
    expect(turns.map((t) => t.status)).toEqual(["failed", "completed"]);
    expect(committedOf(results).map((c) => c.status)).toEqual(["failed", "completed"]);
  });

  it("drops parts that arrive before inference.start", async () => {
    const c = await newCollector();
    const { instanceId, sessionId } = c.serializeState();
    const results = await applyAll(c, [
      ev("inference.text.delta", { token: "early" }),
      done([{ type: "text", text: "too early" }], { input: 5, output: 5 }),
      toolDone("c0", "result"),
      ev("inference.error", { error: { category: "timeout", message: "slow" } }),
      ev("inference.usage", { usage: { input: 3, output: 4 } }),
    ]);
    expect(await turnsOf(instanceId)).toEqual([]);
    expect(await sessionPartCount(sessionId)).toBe(0);
    expect(c.accumulatedText).toBe("");
    expect(committedOf(results)).toEqual([]);
  });

  it("a second inference.start completes the first turn", async () => {
    const c = await newCollector();
    await applyAll(c, [start("m1"), done([{ type: "text", text: "step one" }])]);
    const first = c.currentTurnId;
    await c.apply(db, start("m2"));
    const turns = await turnsOf(c.serializeState().instanceId);
    expect(turns.map((t) => [t.id, t.model, t.status, t.endedAt instanceof Date])).toEqual([
      [first, "m1", "completed", true],
      [c.currentTurnId, "m2", "running", false],
    ]);
  });

  it("a fatal reactor.error with no turn creates a turn and an error part", async () => {
    const c = await newCollector();
    const results = await applyAll(c, [ev("reactor.error", { error: "harness failed to boot", fatal: true })]);
    const [turn, ...more] = await turnsOf(c.serializeState().instanceId);
    expect(more).toEqual([]);
    expect(turn).toMatchObject({ model: "unknown", status: "failed" });
    expect((await partsOf(turn?.id as string)).map((p) => [p.ordinal, p.type, p.content, p.metadata])).toEqual([
      [0, "error", "harness failed to boot", { category: "reactor_error" }],
    ]);
    expect(committedOf(results)).toMatchObject([{ turnId: turn?.id, status: "failed", hadError: true }]);
  });

  it("inference.error then connector.reply stores the error part and the reply as a text part", async () => {
    const c = await newCollector();
    await applyAll(c, [
      start(),
      ev("inference.text.delta", { token: "partial" }),
      ev("inference.error", {
        error: { category: "quota_exhausted", message: "Rate limited", statusCode: 429 },
        partial: true,
      }),
    ]);
    const turnId = c.currentTurnId as string;
    const [result] = await applyAll(c, [reply("Sorry, I could not answer.")]);
    expect((await partsOf(turnId)).map((p) => [p.type, p.content, p.metadata])).toEqual([
      ["step-start", null, { model: "echo:echo" }],
      ["error", "Rate limited", { category: "quota_exhausted", statusCode: 429 }],
      ["text", "Sorry, I could not answer.", null],
    ]);
    expect((await turnsOf(c.serializeState().instanceId))[0]?.status).toBe("failed");
    expect(result?.committed).toMatchObject({
      turnId,
      status: "failed",
      hadReply: true,
      hadError: true,
      errors: [{ category: "quota_exhausted", message: "Rate limited" }],
    });
  });

  it("settles each model call's usage once: reports are cumulative, the final one wins, later ones change nothing", async () => {
    const c = await newCollector();
    const results = await applyAll(c, [
      start(),
      ev("inference.usage", { usage: { input: 10, output: 2, cacheRead: 0, cacheWrite: 0, thinking: 0 } }),
      ev("inference.usage", { usage: { input: 10, output: 5, cacheRead: 3, cacheWrite: 0, thinking: 1 } }),
      done([{ type: "text", text: "x" }], { input: 10, output: 7, cacheRead: 3, cacheWrite: 2, thinking: 4 }),
      ev("inference.usage", { usage: { input: 99, output: 99 } }),
      // A replayed inference.done: no second usage, no second set of parts.
      done([{ type: "text", text: "x" }], { input: 10, output: 7, cacheRead: 3, cacheWrite: 2, thinking: 4 }),
    ]);
    const [turn] = await turnsOf(c.serializeState().instanceId);
    expect(turn).toMatchObject({
      inputTokens: 10,
      outputTokens: 7,
      cacheReadTokens: 3,
      cacheWriteTokens: 2,
      thinkingTokens: 4,
    });
    expect(results.map((r) => r.settled?.usage ?? null)).toEqual([
      null,
      null,
      null,
      { input: 10, output: 7, cacheRead: 3, cacheWrite: 2, thinking: 4 },
      null,
      null,
    ]);
    expect(results[3]?.settled).toMatchObject({ turnId: turn?.id, model: "echo:echo" });
    expect((await partsOf(turn?.id as string)).map((p) => p.type)).toEqual(["step-start", "text", "step-finish"]);
  });

  it("a call without a final report settles at its last interim one, also when it fails or is cut off", async () => {
    const c = await newCollector();
    const failed = await applyAll(c, [
      start(),
      ev("inference.usage", { usage: { input: 8, output: 3 } }),
      ev("inference.error", { error: { category: "timeout", message: "slow" } }),
    ]);
    expect(failed[2]?.settled?.usage).toEqual({ input: 8, output: 3, cacheRead: 0, cacheWrite: 0, thinking: 0 });
    const untold = await applyAll(c, [start(), ev("inference.usage", { usage: { input: 4, output: 1 } })]);
    expect(untold[0]?.settled?.usage).toBeUndefined(); // the first call settled already, at its error
    const cut = await c.abandon(db, "sidecar_disconnected");
    expect(cut?.settled?.usage).toEqual({ input: 4, output: 1, cacheRead: 0, cacheWrite: 0, thinking: 0 });
  });
});

describe("collector: abandon", () => {
  it("marks an open turn failed with an error part, and fires no turn.committed", async () => {
    const c = await newCollector();
    await applyAll(c, [start(), ev("inference.text.delta", { token: "half" })]);
    const turnId = c.currentTurnId as string;
    expect(c.status).toBe("busy");
    expect(await c.abandon(db, "sidecar_disconnected", "The sidecar disconnected")).not.toBeNull();
    const [turn] = await turnsOf(c.serializeState().instanceId);
    expect(turn).toMatchObject({ id: turnId, status: "failed" });
    expect(turn?.endedAt).toBeInstanceOf(Date);
    expect((await partsOf(turnId)).map((p) => [p.type, p.content, p.metadata])).toEqual([
      ["step-start", null, { model: "echo:echo" }],
      ["error", "The sidecar disconnected", { category: "sidecar_disconnected" }],
    ]);
    expect(c.currentTurnId).toBeNull();
    expect(c.lastTurnId).toBe(turnId);
    expect(c.status).toBe("idle");
    // The abandoned turn is closed: a late reply neither reopens it nor commits it.
    const [late] = await applyAll(c, [reply("late")]);
    expect(late?.committed).toBeNull();
    expect(await partsOf(turnId)).toHaveLength(2);
  });

  it("is a no-op without an open turn and after finalization", async () => {
    const fresh = await newCollector();
    expect(await fresh.abandon(db, "sidecar_disconnected")).toBeNull();
    expect(await turnsOf(fresh.serializeState().instanceId)).toEqual([]);

    const c = await newCollector();
    await applyAll(c, [start(), done([{ type: "text", text: "hi" }]), reply("hi")]);
    const [before] = await turnsOf(c.serializeState().instanceId);
    expect(await c.abandon(db, "sidecar_disconnected")).toBeNull();
    const [after] = await turnsOf(c.serializeState().instanceId);
    expect(after).toEqual(before);
    expect(after?.status).toBe("completed");
    expect(await partsOf(after?.id as string)).toHaveLength(3);
  });
});

describe("collector: turn.committed", () => {
  it("fires on reactor.done without a reply, and on connector.reply with one", async () => {
    const a = await newCollector();
    const ra = await applyAll(a, [start(), done([{ type: "text", text: "bye" }]), ev("reactor.done")]);
    expect(committedOf(ra)).toEqual([
      {
        turnId: a.lastTurnId,
        status: "completed",
        text: "bye",
        hadReply: false,
        hadError: false,
        errors: [],
        toolCalls: [],
        toolErrors: [],
      },
    ]);

    const b = await newCollector();
    const rb = await applyAll(b, [
      start(),
      done([
        { type: "thinking", thinking: "private reasoning" },
        { type: "text", text: "Hello " },
        { type: "text", text: "world" },
      ]),
      reply("Hello world"),
    ]);
    expect(committedOf(rb)).toEqual([
      {
        turnId: b.lastTurnId,
        status: "completed",
        text: "Hello world",
        hadReply: true,
        hadError: false,
        errors: [],
        toolCalls: [],
        toolErrors: [],
      },
    ]);
  });

  it("fires once per turn in a tool loop, with tool calls, tool errors and non-fatal reactor errors", async () => {
    const c = await newCollector();
    const results = await applyAll(c, [
      start(),
      done([
        { type: "text", text: "Checking." },
        { type: "tool_call", callId: "a", name: "read_file", arguments: { path: "/x" } },
        { type: "tool_call", callId: "b", name: "fetch", arguments: { url: "http://nope" } },
      ]),
      toolDone("a", { lines: 3 }),
      toolDone("b", "connection refused", true),
      ev("reactor.error", { error: "tool budget low", fatal: false }),
      start(),
      done([{ type: "text", text: "All done." }]),
      reply("All done."),
    ]);
    const commits = committedOf(results);
    expect(commits).toHaveLength(2);
    const [first, second] = commits;
    const turns = await turnsOf(c.serializeState().instanceId);
    expect(turns.map((t) => t.id)).toEqual([first?.turnId, second?.turnId]);
    expect(first).toEqual({
      turnId: turns[0]?.id,
      status: "completed",
      text: "Checking.",
      hadReply: false,
      hadError: true,
      errors: [{ category: "reactor_error", message: "tool budget low" }],
      toolCalls: [
        { name: "read_file", arguments: { path: "/x" }, result: '{"lines":3}', isError: false },
        { name: "fetch", arguments: { url: "http://nope" }, result: "connection refused", isError: true },
      ],
      toolErrors: [{ name: "fetch", content: "connection refused" }],
    });
    expect(second).toMatchObject({ status: "completed", text: "All done.", hadReply: true, errors: [], toolCalls: [] });
    expect(turns.map((t) => t.status)).toEqual(["completed", "completed"]);
  });

  it("after finalization, later events add no parts, open no turn and change neither summary nor text", async () => {
    const c = await newCollector();
    const { instanceId, sessionId } = c.serializeState();
    const [, , r] = await applyAll(c, [start(), done([{ type: "text", text: "final" }]), reply("final")]);
    const summary = r?.committed;
    const snapshot = structuredClone(summary);
    const parts = await sessionPartCount(sessionId);
    const later = await applyAll(c, [
      ev("inference.text.delta", { token: " more" }),
      done([{ type: "text", text: "extra" }]),
      toolDone("z", "late", true),
      ev("inference.error", { error: { category: "fatal", message: "late" } }),
      reply("again"),
      ev("reactor.error", { error: "late", fatal: false }),
      ev("inference.usage", { usage: { input: 9, output: 9 } }),
    ]);
    expect(committedOf(later)).toEqual([]);
    expect(summary).toEqual(snapshot);
    expect(await sessionPartCount(sessionId)).toBe(parts);
    const turns = await turnsOf(instanceId);
    expect(turns).toHaveLength(1);
    expect(turns[0]).toMatchObject({ status: "completed", inputTokens: 0, outputTokens: 0 });
    expect(c.accumulatedText).toBe("final");
    expect(c.lastTurnId).toBe(turns[0]?.id);
    expect(c.currentTurnId).toBeNull();
  });

  it("ignores every event after a terminal one until a new collector is made", async () => {
    const c = await newCollector();
    const { instanceId } = c.serializeState();
    await applyAll(c, [start(), ev("reactor.done")]);
    expect(c.ended).toBe(true);
    const after = await applyAll(c, [start(), ev("reactor.error", { error: "x", fatal: true })]);
    expect(after.every((r) => r.committed === null && !r.statusChanged)).toBe(true);
    expect(await turnsOf(instanceId)).toHaveLength(1);
  });
});

describe("collector: runtime status and resumability", () => {
  it("tracks the runtime status through apply", async () => {
    const c = await newCollector();
    expect(c.status).toBe("idle");
    const results = await applyAll(c, [
      start(),
      ev("reactor.gate.blocked", { reason: "approval", gateId: "g1" }),
      ev("reactor.gate.cleared", { gateId: "g1", reason: "resolved" }),
      done([{ type: "text", text: "ok" }]),
      reply("ok"),
    ]);
    expect(results.map((r) => [r.status, r.statusChanged])).toEqual([
      ["busy", true],
      ["waiting_approval", true],
      ["busy", true],
      ["busy", false],
      ["idle", true],
    ]);
  });

  it("restoring the serialized state between every event gives the same rows and summaries", async () => {
    const script = (): InferenceEvent[] => [
      ev("reactor.start"),
      start("m1"),
      ev("inference.text.delta", { token: "Look" }),
      ev("inference.usage", { usage: { input: 11, output: 3 } }),
      done(
        [
          { type: "thinking", thinking: "plan" },
          { type: "text", text: "Looking." },
          { type: "tool_call", callId: "t1", name: "grep", arguments: { pattern: "x" } },
        ],
        { input: 1, output: 1 },
      ),
      toolDone("t1", { matches: [] }),
      toolDone("t2", "boom", true),
      start("m2"),
      ev("inference.text.delta", { token: "Nothing" }),
      ev("inference.error", { error: { category: "timeout", message: "took too long" } }),
      reply("Nothing found."),
      start("m3"),
      ev("inference.text.delta", { token: "cut off" }),
    ];
    async function run(resume: boolean) {
      let c = await newCollector();
      const { instanceId, sessionId } = c.serializeState();
      const commits = [];
      const texts: string[] = [];
      for (const event of script()) {
        if (resume) c = EventCollector.restoreState(JSON.parse(JSON.stringify(c.serializeState())) as CollectorState);
        const r = await c.apply(db, event);
        if (r.committed) commits.push({ ...r.committed, turnId: "-" });
        texts.push(c.accumulatedText);
      }
      if (resume) c = EventCollector.restoreState(JSON.parse(JSON.stringify(c.serializeState())) as CollectorState);
      const abandoned = (await c.abandon(db, "sidecar_disconnected")) !== null;
      const turns = await turnsOf(instanceId);
      const rows = [];
      for (const t of turns) {
        const parts = await partsOf(t.id);
        rows.push({
          model: t.model,
          status: t.status,
          tokens: [t.inputTokens, t.outputTokens],
          parts: parts.map((p) => [p.ordinal, p.type, p.content, p.metadata]),
        });
      }
      expect(new Set(turns.map((t) => t.sessionId))).toEqual(new Set([sessionId]));
      return { commits, texts, rows, abandoned, status: c.status };
    }
    const straight = await run(false);
    const resumed = await run(true);
    expect(resumed).toEqual(straight);
    // The script is not trivial: three turns, two commits, the last one abandoned.
    expect(straight.rows.map((r) => r.status)).toEqual(["completed", "failed", "failed"]);
    expect(straight.commits).toHaveLength(2);
    expect(straight.abandoned).toBe(true);
    // The final report of the first call ({1, 1}) settles it, not the sum with the interim one.
    expect(straight.rows[0]?.tokens).toEqual([1, 1]);
  });

  it("keeps its state when a write fails", async () => {
    const ids = await makeInstance();
    const c = EventCollector.create({ ...ids, sessionId: newId("session") });
    await expect(c.apply(db, start())).rejects.toThrow();
    expect(c.currentTurnId).toBeNull();
    expect(c.status).toBe("idle");
    expect(await turnsOf(ids.instanceId)).toEqual([]);
  });

  it("refuses a state it does not know", () => {
    expect(() => EventCollector.restoreState({ version: 2 } as unknown as CollectorState)).toThrow();
  });
});

describe("collector: traces", () => {
  const caller = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", parentSpanId: "00f067aa0ba902b7" };

  it("a fresh turn takes the context it is given; the next step of its tool loop stays in that trace", async () => {
    const c = await newCollector();
    const ids = c.serializeState();
    const t0 = new Date("2026-12-01T10:00:00.000Z");
    const at = (ms: number) => new Date(t0.getTime() + ms);
    await c.apply(db, start(), t0, caller);
    await c.apply(db, done([{ type: "tool_call", callId: "k1", name: "clock", arguments: {} }]), at(100));
    await c.apply(db, toolDone("k1", "noon"), at(250));
    // A context offered to a continuing step is not taken: the loop keeps its trace.
    await c.apply(db, start(), at(300), { traceId: "f".repeat(32), parentSpanId: null });
    await c.apply(db, done([{ type: "text", text: "It is noon" }]), at(400));
    await c.apply(db, reply("It is noon"), at(410));
    // Afresh without a context: a trace of its own, named after its turn.
    await c.apply(db, start(), at(500));
    const [first, second, third] = await turnsOf(ids.instanceId);
    expect([first?.traceId, first?.parentSpanId]).toEqual([caller.traceId, caller.parentSpanId]);
    expect([second?.traceId, second?.parentSpanId]).toEqual([caller.traceId, caller.parentSpanId]);
    expect([third?.traceId, third?.parentSpanId]).toEqual([third?.id.slice(4), null]);
    const parts = await partsOf(first?.id as string);
    expect(parts.map((p) => [p.type, p.createdAt?.getTime()])).toEqual([
      ["step-start", t0.getTime()],
      ["tool", at(100).getTime()],
      ["step-finish", at(100).getTime()],
      ["tool", at(250).getTime()],
    ]);
  });

  it("keeps the trace across a save and restore (another isolate)", async () => {
    const c = await newCollector();
    await c.apply(db, start(), new Date(), caller);
    const restored = EventCollector.restoreState(c.serializeState());
    await restored.apply(db, start());
    const turns = await turnsOf(c.serializeState().instanceId);
    expect(turns.map((t) => t.traceId)).toEqual([caller.traceId, caller.traceId]);
  });
});

describe("deriveStatus", () => {
  const cases: [RuntimeStatus, string, Record<string, unknown>, RuntimeStatus][] = [
    ["idle", "inference.start", {}, "busy"],
    ["waiting_approval", "inference.start", {}, "busy"],
    ["busy", "connector.reply", {}, "idle"],
    ["busy", "reactor.gate.blocked", { reason: "approval" }, "waiting_approval"],
    ["busy", "reactor.gate.blocked", { reason: "rate_limit" }, "busy"],
    ["idle", "reactor.gate.blocked", { reason: "pacing" }, "idle"],
    ["waiting_approval", "reactor.gate.cleared", {}, "busy"],
    ["busy", "reactor.done", {}, "idle"],
    ["busy", "reactor.error", { fatal: true }, "idle"],
    ["busy", "reactor.error", { fatal: false }, "busy"],
    ["waiting_approval", "reactor.error", {}, "waiting_approval"],
    ["busy", "inference.text.delta", {}, "busy"],
    ["idle", "tool.done", {}, "idle"],
    ["waiting_approval", "custom.anything", {}, "waiting_approval"],
  ];
  it.each(cases)("%s + %s %j → %s", (current, type, data, expected) => {
    expect(deriveStatus(current, { type, data })).toBe(expected);
  });
});
