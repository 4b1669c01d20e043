/**
 * Timeline reconstruction over real state repositories (stored as the hub stores them): the turns a
 * conversation's checkpoints tell, error records, mail, and the gaps damage leaves; then the merge with
 * what the hub recorded and the cursors into the event log.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { mergeTimeline, reconstructTimeline } from "../../src/agent-state/timeline";
import { getDb } from "../../src/db/client";
import { commitOnRef } from "../../src/git/service/hub-commit";
import { openRepository } from "../../src/git/service/repository";
import { timelineCursors } from "../../src/runtime/timeline-cursors";
import { hubSigningKey } from "../../src/secrets/hub-signing-key";
import { createTenant, unique } from "./support/api";

const db = getDb(env);
const encoder = new TextEncoder();
let tenantId: string;

beforeAll(async () => {
  tenantId = (await createTenant()).id;
});

type Message = { role: string; content: Record<string, unknown>[]; timestamp: number };
const user = (text: string, timestamp: number): Message => ({
  role: "user",
  content: [{ type: "text", text }],
  timestamp,
});
const assistant = (text: string, timestamp: number): Message => ({
  role: "assistant",
  content: [{ type: "text", text }],
  timestamp,
});
const jsonl = (messages: Message[]) =>
  messages.map((m) => JSON.stringify(m)).join("\n") + (messages.length ? "\n" : "");

/** A state repository built commit by commit; each commit is the whole tree so far plus `changes`. */
function stateRepo() {
  const repositoryId = `agent-state/test-${unique()}`;
  const files = new Map<string, Uint8Array>();
  let tip: string | null = null;
  return {
    async commit(message: string, changes: Record<string, string | null>, timeSeconds: number) {
      for (const [path, text] of Object.entries(changes)) {
        if (text === null) files.delete(path);
        else files.set(path, encoder.encode(text));
      }
      tip = (
        await commitOnRef(db, env.BLOBS, {
          repositoryId,
          tenantId,
          ref: "refs/heads/main",
          message,
          key: await hubSigningKey((env as unknown as Env).SECRETS_KEY),
          content: { files: new Map(files) },
          now: new Date(timeSeconds * 1000),
        })
      ).commitOid;
      return tip;
    },
    async timeline() {
      const { store } = await openRepository(db, env.BLOBS, repositoryId, { head: "refs/heads/main" });
      return reconstructTimeline(store, tip);
    },
  };
}

const errorRecord = (category: string, message: string, seq: number) =>
  JSON.stringify({ source: "inference", category, message, fatal: true, timestamp: 1, sessionId: "ses_1", seq });
const mail = (messageId: string, body: string) => `Message-ID: ${messageId}\r\nSubject: hi\r\n\r\n${body}\r\n`;

describe("timeline reconstruction", () => {
  it("an empty repository has no events and no gaps", async () => {
    expect(await stateRepo().timeline()).toEqual({ events: [], gaps: [] });
  });

  it("one turn: the assistant's text at the message's time, not the commit's; no gaps", async () => {
    const repo = stateRepo();
    await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([user("hi", 1000), assistant("hello", 2000)]) },
      900,
    );
    expect(await repo.timeline()).toEqual({
      events: [{ kind: "turn", content: "hello", timestamp: 2000, status: "completed" }],
      gaps: [],
    });
  });

  it("a refusal-only answer is a turn whose content is the reason", async () => {
    const repo = stateRepo();
    const refusal: Message = {
      role: "assistant",
      content: [{ type: "refusal", reason: "I cannot help with that" }],
      timestamp: 2000,
    };
    await repo.commit("checkpoint: inference-done", { "turns.jsonl": jsonl([user("do it", 1000), refusal]) }, 10);
    expect((await repo.timeline()).events).toEqual([
      { kind: "turn", content: "I cannot help with that", timestamp: 2000, status: "completed" },
    ]);
  });

  it("turns across checkpoints; a tool loop is one turn with the final text; statuses follow the reasons", async () => {
    const repo = stateRepo();
    const first = [user("one", 1000), assistant("first answer", 2000)];
    await repo.commit("checkpoint: inference-done", { "turns.jsonl": jsonl(first) }, 10);
    const call: Message = {
      role: "assistant",
      content: [{ type: "tool_call", callId: "c1", name: "clock", arguments: {} }],
      timestamp: 4000,
    };
    const result: Message = {
      role: "user",
      content: [{ type: "tool_result", callId: "c1", content: "noon" }],
      timestamp: 5000,
    };
    await repo.commit(
      "checkpoint: tool-execution",
      { "turns.jsonl": jsonl([...first, user("time?", 3000), call]) },
      20,
    );
    const midway = await repo.timeline();
    expect(midway.events).toHaveLength(1);
    await repo.commit(
      "checkpoint: tool-done",
      { "turns.jsonl": jsonl([...first, user("time?", 3000), call, result]) },
      30,
    );
    const all = [...first, user("time?", 3000), call, result, assistant("It is noon", 6000)];
    await repo.commit("checkpoint: inference-done", { "turns.jsonl": jsonl(all) }, 40);
    await repo.commit(
      "checkpoint: inference-error",
      { "turns.jsonl": jsonl([...all, user("again", 7000), assistant("partial", 8000)]) },
      50,
    );
    const { events, gaps } = await repo.timeline();
    expect(events).toEqual([
      { kind: "turn", content: "first answer", timestamp: 2000, status: "completed" },
      { kind: "turn", content: "It is noon", timestamp: 6000, status: "completed" },
      { kind: "turn", content: "partial", timestamp: 8000, status: "error", isError: true },
    ]);
    expect(gaps).toEqual([]);
  });

  it("a turn still answering is in-progress", async () => {
    const repo = stateRepo();
    await repo.commit(
      "checkpoint: gate-cleared",
      { "turns.jsonl": jsonl([user("go", 1000), assistant("working on it", 2000)]) },
      10,
    );
    expect((await repo.timeline()).events).toEqual([
      { kind: "turn", content: "working on it", timestamp: 2000, status: "in-progress" },
    ]);
  });

  it("error records attach to the turn before them; corrupt ones are gaps", async () => {
    const repo = stateRepo();
    await repo.commit(
      "checkpoint: inference-error",
      { "turns.jsonl": jsonl([user("x", 1000), assistant("half", 2000)]) },
      10,
    );
    await repo.commit(
      "Record 2 error record(s)",
      {
        "state/errors/ses_1/00000001-provider_error.json": errorRecord("provider_error", "upstream 500", 1),
        "state/errors/ses_1/00000002-broken.json": "{not json",
      },
      20,
    );
    const { events, gaps } = await repo.timeline();
    expect(events).toEqual([
      {
        kind: "turn",
        content: "half",
        timestamp: 2000,
        status: "error",
        isError: true,
        errors: [{ category: "provider_error", message: "upstream 500" }],
      },
    ]);
    expect(gaps.map((g) => g.kind)).toEqual(["corrupt-error-record"]);
  });

  it("mail in and out, matched to their commits; outbound carries its checkpoint; interleaved by time", async () => {
    const repo = stateRepo();
    await repo.commit(
      "Record inbound mail <in-1@test>",
      { "state/mail/0badcafe/0001-in.eml": mail("<in-1@test>", "hello") },
      1,
    );
    const checkpoint = await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([user("hello", 1500), assistant("hi there", 2500)]) },
      2,
    );
    await repo.commit(
      `Record outbound mail <out-1@test>\n\nCheckpoint: ${checkpoint}`,
      { "state/mail/0badcafe/0002-out.eml": mail("<out-1@test>", "hi there") },
      3,
    );
    const { events, gaps } = await repo.timeline();
    expect(gaps).toEqual([]);
    expect(events.map((e) => [e.kind, e.timestamp])).toEqual([
      ["mail", 1000],
      ["turn", 2500],
      ["mail", 3000],
    ]);
    expect(events[0]).toMatchObject({ direction: "in", messageId: "<in-1@test>", raw: mail("<in-1@test>", "hello") });
    expect(events[2]).toMatchObject({ direction: "out", messageId: "<out-1@test>", checkpointHash: checkpoint });
    expect(events[0]).not.toHaveProperty("checkpointHash");
  });

  it("mail with no commit is an orphan gap at time 0", async () => {
    const repo = stateRepo();
    await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": "", "state/mail/00000000/0001-in.eml": mail("<lost@test>", "?") },
      5,
    );
    const { events, gaps } = await repo.timeline();
    expect(events).toEqual([expect.objectContaining({ kind: "mail", messageId: "<lost@test>", timestamp: 0 })]);
    expect(gaps.map((g) => g.kind)).toEqual(["orphan-mail"]);
  });

  it("a shrinking conversation is one regression gap, and its turns still appear", async () => {
    const repo = stateRepo();
    await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([user("a", 1000), assistant("A", 2000), user("b", 3000), assistant("B", 4000)]) },
      10,
    );
    await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([user("c", 5000), assistant("C", 6000)]) },
      20,
    );
    await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([user("c", 5000), assistant("C", 6000), user("d", 7000), assistant("D", 8000)]) },
      30,
    );
    const { events, gaps } = await repo.timeline();
    expect(events.map((e) => (e.kind === "turn" ? e.content : ""))).toEqual(["A", "B", "C", "D"]);
    expect(gaps.map((g) => g.kind)).toEqual(["message-count-regression"]);
  });

  it("each unreadable turns.jsonl is its own gap, and the rest is still read", async () => {
    const repo = stateRepo();
    await repo.commit("checkpoint: inference-done", { "turns.jsonl": "{broken\n" }, 10);
    await repo.commit("checkpoint: inference-done", { "turns.jsonl": "[1,2" }, 20);
    await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([user("q", 1000), assistant("ok", 2000)]) },
      30,
    );
    const { events, gaps } = await repo.timeline();
    expect(gaps.map((g) => g.kind)).toEqual(["corrupt-checkpoint", "corrupt-checkpoint"]);
    expect(events).toEqual([{ kind: "turn", content: "ok", timestamp: 2000, status: "completed" }]);
  });

  it("a full session: mail, a tool loop, an error, and the reply, in order", async () => {
    const repo = stateRepo();
    await repo.commit(
      "Record inbound mail <m1@test>",
      { "state/mail/11111111/0001-in.eml": mail("<m1@test>", "what time is it?") },
      1,
    );
    const ask = user("what time is it?", 1100);
    const call: Message = {
      role: "assistant",
      content: [{ type: "tool_call", callId: "c", name: "clock", arguments: {} }],
      timestamp: 1200,
    };
    await repo.commit("checkpoint: tool-execution", { "turns.jsonl": jsonl([ask, call]), "metadata.json": "{}" }, 2);
    const result: Message = {
      role: "user",
      content: [{ type: "tool_result", callId: "c", content: "12:00" }],
      timestamp: 1300,
    };
    await repo.commit(
      "checkpoint: tool-done",
      { "turns.jsonl": jsonl([ask, call, result]), "tool-output/c.txt": "12:00" },
      3,
    );
    const done = await repo.commit(
      "checkpoint: inference-done",
      { "turns.jsonl": jsonl([ask, call, result, assistant("It is 12:00", 1400)]) },
      4,
    );
    await repo.commit(
      `Record outbound mail <m2@test>\n\nCheckpoint: ${done}`,
      { "state/mail/11111111/0002-out.eml": mail("<m2@test>", "It is 12:00") },
      5,
    );
    const { events, gaps } = await repo.timeline();
    expect(gaps).toEqual([]);
    expect(events.map((e) => (e.kind === "turn" ? `turn:${e.content}` : `mail:${e.direction}`))).toEqual([
      "mail:in",
      "turn:It is 12:00",
      "mail:out",
    ]);
  });
});

describe("the merged timeline", () => {
  it("joins the hub's records to the repository's by Message-ID and turn time, with cursors", () => {
    const merged = mergeTimeline(
      {
        events: [
          { kind: "mail", direction: "in", messageId: "<a@t>", timestamp: 1000, raw: "A" },
          { kind: "turn", content: "answer", timestamp: 2500, status: "completed" },
          { kind: "mail", direction: "out", messageId: "<old@t>", timestamp: 500, raw: "O" },
        ],
        gaps: [],
      },
      {
        turns: [{ id: "trn_1", status: "completed", startedAt: 2000, endedAt: 3000, model: "echo" }],
        mail: [
          { id: "eml_1", direction: "inbound", messageId: "<a@t>", createdAt: 1000 },
          { id: "eml_2", direction: "outbound", messageId: "<b@t>", createdAt: 3100 },
        ],
        cursors: { turns: { trn_1: 4 }, mail: { eml_1: 1 } },
      },
    );
    expect(merged.map((i) => [i.kind, i.source, i.cursor])).toEqual([
      ["mail", "state", null],
      ["mail", "both", 1],
      ["turn", "both", 4],
      ["mail", "hub", null],
    ]);
    expect(merged[2]).toMatchObject({
      content: "answer",
      turnId: "trn_1",
      model: "echo",
      timestamp: new Date(2500).toISOString(),
    });
    expect(merged[1]).toMatchObject({ mailId: "eml_1", raw: "A" });
  });

  it("finds where turns and mail start in the event log", () => {
    const at = 0;
    const cursors = timelineCursors([
      { seq: 1, type: "mail.delivered", data: JSON.stringify({ id: "eml_1" }), at },
      { seq: 2, type: "inference.start", data: "{}", at },
      { seq: 3, type: "turn.started", data: JSON.stringify({ turnId: "trn_1", cursor: 1 }), at },
      { seq: 4, type: "turn.committed", data: JSON.stringify({ turnId: "trn_1" }), at },
      { seq: 5, type: "turn.started", data: "not json", at },
    ]);
    expect(cursors).toEqual({ turns: { trn_1: 1 }, mail: { eml_1: 0 } });
  });
});
