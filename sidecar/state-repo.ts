/**
 * An instance's state as a git repository (docs/sidecar-protocol.md §3.2), kept with isomorphic-git on the
 * local disk. Layout, per instance under the sidecar's state directory:
 *
 *   <stateDir>/<instanceId>/state/       the repository (work tree + .git), branch refs/heads/main
 *   <stateDir>/<instanceId>/workspace/   assets checked out at their mountPath (never committed)
 *
 * The work tree holds only what the hub accepts at the top level of a state commit: `turns.jsonl`,
 * `metadata.json`, `tool-output/`, `state/` (mail and error records) and `.gitignore`. Every write goes through
 * one promise chain per repository, so commits never interleave and a pack is built between two commits.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import git from "isomorphic-git";
import type { ConnectorState, ContentBlock, TokenUsage } from "../src/runtime/protocol";

export const MAIN_REF = "refs/heads/main";

/** Why a checkpoint was taken: the last word of its commit message `checkpoint: <reason>`. */
export type CheckpointReason = "inference-done" | "tool-execution" | "tool-done" | "inference-error" | "gate-cleared";

/** One line of `turns.jsonl`. Tool results are `user` turns whose first block is a `tool_result`. */
export type Turn = {
  role: "user" | "assistant" | "system";
  content: ContentBlock[];
  model?: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
};

export type StateMetadata = {
  pendingOperations: unknown[];
  tokenUsage: TokenUsage;
  connectorState: ConnectorState;
};

export type ToolOutput = { callId: string; content: unknown; isError: boolean };

export type StateSnapshot = { turns: Turn[]; metadata: StateMetadata; toolOutputs?: ToolOutput[] };

export type MailRecord = {
  direction: "in" | "out";
  /** The raw MIME bytes. */
  raw: Uint8Array;
  messageId: string | null;
  /** The Message-ID of the thread's first message: mail of one thread shares a directory. */
  threadRoot: string;
};

export type ErrorRecord = {
  source: "inference" | "reactor";
  category: string;
  message: string;
  statusCode?: number;
  fatal: boolean;
  timestamp: number;
};

/** What the harness records; every call only queues the work (failures are logged, never thrown). */
export interface StateRecorder {
  checkpoint(reason: CheckpointReason, snapshot: StateSnapshot): void;
  recordMail(mail: MailRecord): void;
  recordErrors(sessionId: string, errors: ErrorRecord[]): void;
}

const GITIGNORE = "# Only what the hub accepts is committed; temporary files never are.\n*.tmp\n";

/** The 8 hex characters naming a thread's directory under `state/mail/`. */
export function threadId(rootMessageId: string): string {
  return createHash("sha256").update(rootMessageId.trim()).digest("hex").slice(0, 8);
}

/** A file name from an id we did not choose (a model's tool call id): safe characters, else a hash. */
function safeName(id: string): string {
  return /^[A-Za-z0-9_.-]{1,100}$/.test(id) && !id.startsWith(".")
    ? id
    : createHash("sha256").update(id).digest("hex").slice(0, 16);
}

export class StateRepo implements StateRecorder {
  /** The repository's work tree (its git directory is `<dir>/.git`). */
  readonly dir: string;
  readonly gitdir: string;
  /** Where assets are checked out. */
  readonly workspace: string;
  /** isomorphic-git's object cache, shared by every call on this repository. */
  readonly cache = {};
  /** The latest `checkpoint:` commit, for the `Checkpoint:` trailer of outbound mail records. */
  lastCheckpoint: string | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly root: string,
    private readonly author: () => { name: string; email: string },
    private readonly log: (line: string) => void = () => {},
  ) {
    this.dir = join(root, "state");
    this.gitdir = join(this.dir, ".git");
    this.workspace = join(root, "workspace");
  }

  /** Creates the repository on first use; an existing one is kept as it is. */
  async open(): Promise<void> {
    await mkdir(this.workspace, { recursive: true, mode: 0o700 });
    if (!fs.existsSync(join(this.gitdir, "HEAD"))) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await git.init({ fs, dir: this.dir, defaultBranch: "main" });
    }
    this.lastCheckpoint = await this.findLastCheckpoint();
  }

  /** Runs `task` after every task queued before it. Its failure is the caller's, and does not stop the chain. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.chain.then(task);
    this.chain = result.catch(() => {});
    return result;
  }

  /** Like `run`, for work nobody waits for: a failure is logged (a failed commit must not break a turn). */
  private queue(what: string, task: () => Promise<unknown>): void {
    void this.run(task).catch((error: unknown) => this.log(`state: ${what} failed: ${(error as Error).message}`));
  }

  /** Resolves once everything queued so far is done. */
  idle(): Promise<void> {
    return this.run(async () => {});
  }

  /** The branch's tip, or null before the first commit. */
  async head(): Promise<string | null> {
    try {
      return await git.resolveRef({ fs, gitdir: this.gitdir, ref: MAIN_REF });
    } catch {
      return null;
    }
  }

  checkpoint(reason: CheckpointReason, snapshot: StateSnapshot): void {
    this.queue(`checkpoint ${reason}`, () => this.writeCheckpoint(reason, snapshot));
  }

  recordMail(mail: MailRecord): void {
    this.queue("mail record", () => this.writeMail(mail));
  }

  recordErrors(sessionId: string, errors: ErrorRecord[]): void {
    if (errors.length > 0) this.queue("error record", () => this.writeErrors(sessionId, errors));
  }

  /** Writes the conversation and metadata whole, plus any new tool output, and commits them. */
  async writeCheckpoint(reason: CheckpointReason, snapshot: StateSnapshot): Promise<string> {
    const files: Record<string, string> = {
      "turns.jsonl": snapshot.turns.map((turn) => `${JSON.stringify(turn)}\n`).join(""),
      "metadata.json": `${JSON.stringify(snapshot.metadata, null, 2)}\n`,
    };
    for (const output of snapshot.toolOutputs ?? []) {
      const text = typeof output.content === "string";
      const path = `tool-output/${safeName(output.callId)}.${text ? "txt" : "json"}`;
      files[path] = text ? (output.content as string) : `${JSON.stringify(output.content, null, 2)}\n`;
    }
    const sha = await this.commitFiles(files, `checkpoint: ${reason}`);
    this.lastCheckpoint = sha;
    return sha;
  }

  /**
   * `state/mail/<thread>/<NNNN>-<in|out>.eml`, NNNN counting the thread's mail from 0001. An outbound record
   * names the checkpoint it follows, so the history shows which state the reply came from.
   */
  async writeMail(mail: MailRecord): Promise<string> {
    const thread = threadId(mail.threadRoot);
    const ordinal = (await this.highestOrdinal(join(this.dir, "state", "mail", thread))) + 1;
    const path = `state/mail/${thread}/${String(ordinal).padStart(4, "0")}-${mail.direction}.eml`;
    const id = mail.messageId ?? "<unknown>";
    let message = `Record ${mail.direction === "in" ? "inbound" : "outbound"} mail ${id}`;
    if (mail.direction === "out" && this.lastCheckpoint) message += `\n\nCheckpoint: ${this.lastCheckpoint}`;
    return this.commitFiles({ [path]: mail.raw }, message);
  }

  /** `state/errors/<sessionId>/<seq>-<category>.json`, seq counting the session's errors from 1. */
  async writeErrors(sessionId: string, errors: ErrorRecord[]): Promise<string> {
    const base = join(this.dir, "state", "errors", safeName(sessionId));
    let seq = await this.highestOrdinal(base);
    const files: Record<string, string> = {};
    for (const error of errors) {
      seq += 1;
      const name = `${String(seq).padStart(8, "0")}-${safeName(error.category)}.json`;
      files[`state/errors/${safeName(sessionId)}/${name}`] =
        `${JSON.stringify({ ...error, sessionId, seq }, null, 2)}\n`;
    }
    return this.commitFiles(files, `Record ${errors.length} error record(s)`);
  }

  /** A first commit, so that a push always has a tip with more than `.gitignore` in it. */
  async ensureCommit(): Promise<string> {
    const head = await this.head();
    if (head) return head;
    const metadata: StateMetadata = {
      pendingOperations: [],
      tokenUsage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, thinking: 0 },
      connectorState: null,
    };
    return this.commitFiles(
      { "turns.jsonl": "", "metadata.json": `${JSON.stringify(metadata, null, 2)}\n` },
      "Initialize instance state",
    );
  }

  /** The conversation as committed (after a restart or a restore). */
  async readTurns(): Promise<Turn[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, "turns.jsonl"), "utf8");
    } catch {
      return [];
    }
    const turns: Turn[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        turns.push(JSON.parse(line) as Turn);
      } catch {
        this.log("state: skipped an unreadable line of turns.jsonl");
      }
    }
    return turns;
  }

  async readMetadata(): Promise<StateMetadata | null> {
    try {
      return JSON.parse(await readFile(join(this.dir, "metadata.json"), "utf8")) as StateMetadata;
    } catch {
      return null;
    }
  }

  /** Moves the branch to `sha` (already in the object store) and makes the work tree match it. */
  async resetTo(sha: string): Promise<void> {
    await git.writeRef({ fs, gitdir: this.gitdir, ref: MAIN_REF, value: sha, force: true });
    await git.checkout({ fs, dir: this.dir, gitdir: this.gitdir, ref: "main", force: true, cache: this.cache });
    this.lastCheckpoint = await this.findLastCheckpoint();
  }

  /** Deletes the repository and the workspace. */
  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  private async commitFiles(files: Record<string, string | Uint8Array>, message: string): Promise<string> {
    if (!fs.existsSync(join(this.dir, ".gitignore"))) files[".gitignore"] = GITIGNORE;
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.dir, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, content);
    }
    await git.add({ fs, dir: this.dir, gitdir: this.gitdir, filepath: Object.keys(files), cache: this.cache });
    const author = this.author();
    return git.commit({
      fs,
      dir: this.dir,
      gitdir: this.gitdir,
      message,
      author,
      committer: author,
      cache: this.cache,
    });
  }

  private async highestOrdinal(directory: string): Promise<number> {
    let names: string[];
    try {
      names = await readdir(directory);
    } catch {
      return 0;
    }
    return names.reduce((max, name) => Math.max(max, Number.parseInt(/^(\d+)-/.exec(name)?.[1] ?? "0", 10)), 0);
  }

  private async findLastCheckpoint(): Promise<string | null> {
    if (!(await this.head())) return null;
    try {
      const commits = await git.log({ fs, gitdir: this.gitdir, ref: MAIN_REF, depth: 50, cache: this.cache });
      return commits.find((c) => c.commit.message.startsWith("checkpoint: "))?.oid ?? null;
    } catch {
      return null;
    }
  }
}
