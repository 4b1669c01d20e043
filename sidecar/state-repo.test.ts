/**
 * The state repository, read back with the real git: checkpoints, mail records threaded by their root
 * Message-ID (with the checkpoint trailer on outbound mail), error records, serial commits, reset.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type StateMetadata, StateRepo, type Turn, threadId } from "./state-repo";
import { gitRun } from "./support/git";

let root: string;
let repo: StateRepo;
let logs: string[];

const metadata: StateMetadata = {
  pendingOperations: [],
  tokenUsage: { input: 3, output: 4, cacheRead: 0, cacheWrite: 0, thinking: 0 },
  connectorState: null,
};
const user: Turn = { role: "user", content: [{ type: "text", text: "hello" }], timestamp: 1_700_000_000_000 };
const assistant: Turn = {
  role: "assistant",
  content: [{ type: "text", text: "Echo: hello" }],
  model: "echo",
  timestamp: 1_700_000_000_500,
};
const mime = (id: string) => Buffer.from(`Message-ID: ${id}\r\n\r\nbody\r\n`);

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "sidecar-state-"));
  logs = [];
  repo = new StateRepo(
    join(root, "ins_a"),
    () => ({ name: "agent", email: "ins_a@acme.agent-hub.local" }),
    (line) => logs.push(line),
  );
  await repo.open();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const git = (...args: string[]) => gitRun(repo.dir, args);

describe("StateRepo", () => {
  it("commits checkpoints, mail and errors serially, in the allowed layout", async () => {
    // Queued without waiting, as the harness does: they land in this order, one commit each.
    repo.recordMail({
      direction: "in",
      raw: mime("<m1@hub.test>"),
      messageId: "<m1@hub.test>",
      threadRoot: "<m1@hub.test>",
    });
    repo.checkpoint("inference-done", { turns: [user, assistant], metadata });
    repo.recordMail({
      direction: "out",
      raw: mime("<r1@agent>"),
      messageId: "<r1@agent>",
      threadRoot: "<m1@hub.test>",
    });
    repo.recordMail({
      direction: "in",
      raw: mime("<other@hub.test>"),
      messageId: "<other@hub.test>",
      threadRoot: "<other@hub.test>",
    });
    repo.recordErrors("ses_a", [
      {
        source: "inference",
        category: "credential_failure",
        message: "HTTP 401",
        statusCode: 401,
        fatal: true,
        timestamp: 5,
      },
    ]);
    repo.checkpoint("inference-error", { turns: [user, assistant], metadata });
    await repo.idle();

    git("fsck", "--strict");
    expect(git("log", "--format=%s", "main").trim().split("\n")).toEqual([
      "checkpoint: inference-error",
      "Record 1 error record(s)",
      "Record inbound mail <other@hub.test>",
      "Record outbound mail <r1@agent>",
      "checkpoint: inference-done",
      "Record inbound mail <m1@hub.test>",
    ]);
    const checkpoint = git("log", "--format=%H", "--grep=^checkpoint: inference-done", "main").trim();
    expect(git("log", "-1", "--format=%B", "main~3").trim()).toBe(
      `Record outbound mail <r1@agent>\n\nCheckpoint: ${checkpoint}`,
    );
    expect(git("log", "-1", "--format=%an <%ae>", "main")).toContain("agent <ins_a@acme.agent-hub.local>");

    const thread = threadId("<m1@hub.test>");
    expect(thread).toMatch(/^[0-9a-f]{8}$/);
    const files = git("ls-tree", "-r", "--name-only", "main").trim().split("\n");
    expect(files).toEqual(
      expect.arrayContaining([
        `state/mail/${thread}/0001-in.eml`,
        `state/mail/${thread}/0002-out.eml`,
        `state/mail/${threadId("<other@hub.test>")}/0001-in.eml`,
        "state/errors/ses_a/00000001-credential_failure.json",
        "turns.jsonl",
        "metadata.json",
        ".gitignore",
      ]),
    );
    const top = new Set(git("ls-tree", "--name-only", "main").trim().split("\n"));
    expect([...top].sort()).toEqual([".gitignore", "metadata.json", "state", "turns.jsonl"]);
    expect(git("show", `main:state/mail/${thread}/0002-out.eml`)).toContain("Message-ID: <r1@agent>");
    expect(JSON.parse(git("show", "main:state/errors/ses_a/00000001-credential_failure.json"))).toEqual({
      source: "inference",
      category: "credential_failure",
      message: "HTTP 401",
      statusCode: 401,
      fatal: true,
      timestamp: 5,
      sessionId: "ses_a",
      seq: 1,
    });
    const lines = git("show", "main:turns.jsonl").trim().split("\n");
    expect(lines.map((line) => JSON.parse(line))).toEqual([user, assistant]);
    expect(JSON.parse(git("show", "main:metadata.json"))).toEqual(metadata);
    expect(await repo.readTurns()).toEqual([user, assistant]);
  });

  it("writes tool output as text or JSON, and a failed commit does not stop the next ones", async () => {
    await repo.run(() => Promise.reject(new Error("boom"))).catch(() => {});
    repo.checkpoint("tool-done", {
      turns: [user],
      metadata,
      toolOutputs: [
        { callId: "call_1", content: "12:00", isError: false },
        { callId: "../evil", content: { a: 1 }, isError: true },
      ],
    });
    await repo.idle();
    const files = git("ls-tree", "-r", "--name-only", "main").trim().split("\n");
    expect(files).toContain("tool-output/call_1.txt");
    expect(files.filter((f) => f.startsWith("tool-output/") && f.endsWith(".json"))).toHaveLength(1);
    expect(files.every((f) => !f.includes(".."))).toBe(true);
  });

  it("makes a first commit with metadata when there is none, and resets the branch and work tree", async () => {
    expect(await repo.head()).toBeNull();
    const first = await repo.ensureCommit();
    expect(git("ls-tree", "--name-only", first).trim().split("\n").sort()).toEqual([
      ".gitignore",
      "metadata.json",
      "turns.jsonl",
    ]);
    expect(await repo.ensureCommit()).toBe(first);
    const second = await repo.writeCheckpoint("inference-done", { turns: [user, assistant], metadata });
    expect(repo.lastCheckpoint).toBe(second);
    await repo.resetTo(first);
    expect(await repo.head()).toBe(first);
    expect(await readFile(join(repo.dir, "turns.jsonl"), "utf8")).toBe("");
    expect(repo.lastCheckpoint).toBeNull();
    expect(git("status", "--porcelain").trim()).toBe("");
    await repo.remove();
    expect(existsSync(repo.root)).toBe(false);
  });
});
