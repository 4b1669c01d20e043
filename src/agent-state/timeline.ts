/**
 * An instance's timeline: what its state repository tells (turns rebuilt from the conversation at each
 * checkpoint, error records, mail files) merged with what the hub recorded itself (turns and mail, with
 * their places in the event log). Damage in the repository never fails the timeline: it is reported as
 * gaps, and everything readable is still shown.
 */
import type { Commit } from "../git/objects/object";
import { parseCommit } from "../git/objects/object";
import type { ObjectStore } from "../git/storage/object-store";
import { blobAtPath, filesUnder } from "./tree-files";

export type TimelineTurn = {
  kind: "turn";
  content: string;
  /** The last assistant message's time (ms), not the commit's. */
  timestamp: number;
  status: "completed" | "in-progress" | "error";
  isError?: boolean;
  errors?: { category: string; message: string }[];
};
export type TimelineMail = {
  kind: "mail";
  direction: "in" | "out";
  messageId: string;
  timestamp: number;
  raw: string;
  checkpointHash?: string;
};
export type TimelineGap = {
  kind: "corrupt-checkpoint" | "corrupt-error-record" | "message-count-regression" | "orphan-mail";
  description: string;
};
export type ReconstructedTimeline = { events: (TimelineTurn | TimelineMail)[]; gaps: TimelineGap[] };

const MAX_COMMITS = 10_000;
const CHECKPOINT = /^checkpoint: (inference-done|tool-execution|tool-done|inference-error|gate-cleared)$/;
const ERROR_COMMIT = /^Record \d+ error record\(s\)$/;
const MAIL_COMMIT = /^Record (inbound|outbound) mail (\S+)$/;
const TRAILER = /^Checkpoint: ([0-9a-f]{7,64})$/m;

type Block = { type?: unknown; text?: unknown; reason?: unknown };
type Message = { role?: unknown; content?: unknown; timestamp?: unknown };

const decoder = new TextDecoder();

/** The commits reachable from `tip`, oldest first (by commit time). */
async function commitsOldestFirst(store: ObjectStore, tip: string): Promise<{ oid: string; commit: Commit }[]> {
  const seen = new Set([tip]);
  const out: { oid: string; commit: Commit }[] = [];
  const queue = [tip];
  while (queue.length > 0 && out.length < MAX_COMMITS) {
    const oid = queue.shift() as string;
    const object = await store.read(oid);
    if (object?.type !== "commit") continue;
    const commit = parseCommit(object.body);
    out.push({ oid, commit });
    for (const parent of commit.parents) {
      if (!seen.has(parent)) {
        seen.add(parent);
        queue.push(parent);
      }
    }
  }
  // Parents after children in the walk: reversed, ties in commit time keep history's order.
  return out.reverse().sort((a, b) => a.commit.committer.timestamp - b.commit.committer.timestamp);
}

function textOf(blocks: Block[]): string {
  return blocks
    .map((b) =>
      b.type === "text" && typeof b.text === "string" ? b.text : b.type === "refusal" ? String(b.reason ?? "") : "",
    )
    .filter((t) => t.length > 0)
    .join("");
}

function isErrorRecord(value: unknown): value is { category: string; message: string } {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    (r.source === "inference" || r.source === "reactor") &&
    typeof r.category === "string" &&
    typeof r.message === "string" &&
    typeof r.fatal === "boolean" &&
    typeof r.timestamp === "number" &&
    typeof r.sessionId === "string" &&
    typeof r.seq === "number"
  );
}

function header(raw: string, name: string): string | null {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? "";
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ");
  const match = new RegExp(`^${name}:[ \\t]*(.*)$`, "im").exec(unfolded);
  return match?.[1]?.trim() ?? null;
}

/** Rebuilds the timeline of a state repository from its history at `tip` (null: an empty repository). */
export async function reconstructTimeline(store: ObjectStore, tip: string | null): Promise<ReconstructedTimeline> {
  const events: (TimelineTurn | TimelineMail)[] = [];
  const gaps: TimelineGap[] = [];
  if (!tip) return { events, gaps };
  const commits = await commitsOldestFirst(store, tip);

  type OpenTurn = { blocks: string[]; timestamp: number; event: TimelineTurn | null };
  let previousCount = 0;
  let regressionSeen = false;
  let current: OpenTurn | null = null;
  let lastTurnEvent: TimelineTurn | null = null;
  const mailCommits = new Map<string, { timestamp: number; checkpointHash?: string }>();

  for (const { oid, commit } of commits) {
    const subject = commit.message.split("\n", 1)[0]?.trim() ?? "";
    const mail = MAIL_COMMIT.exec(subject);
    if (mail?.[2]) {
      const trailer = TRAILER.exec(commit.message)?.[1];
      mailCommits.set(mail[2], {
        timestamp: commit.committer.timestamp * 1000,
        ...(trailer ? { checkpointHash: trailer } : {}),
      });
      continue;
    }
    if (ERROR_COMMIT.test(subject)) {
      const before = commit.parents[0]
        ? await filesUnder(store, parseCommit((await store.get(commit.parents[0])).body).tree, "state/errors")
        : new Map<string, string>();
      const files = await filesUnder(store, commit.tree, "state/errors");
      for (const [path, blob] of files) {
        if (before.get(path) === blob || !path.endsWith(".json")) continue;
        let record: unknown;
        try {
          record = JSON.parse(decoder.decode((await store.get(blob)).body));
        } catch {
          record = null;
        }
        if (!isErrorRecord(record)) {
          gaps.push({ kind: "corrupt-error-record", description: `${path} in ${oid} is not an error record` });
          continue;
        }
        if (lastTurnEvent) {
          lastTurnEvent.errors = [
            ...(lastTurnEvent.errors ?? []),
            { category: record.category, message: record.message },
          ];
          lastTurnEvent.isError = true;
        }
      }
      continue;
    }
    const checkpoint = CHECKPOINT.exec(subject);
    if (!checkpoint) continue;
    const status =
      checkpoint[1] === "inference-done" ? "completed" : checkpoint[1] === "inference-error" ? "error" : "in-progress";
    let messages: Message[];
    try {
      const bytes = await blobAtPath(store, commit.tree, "turns.jsonl");
      if (bytes === null) throw new Error("missing");
      messages = decoder
        .decode(bytes)
        .split("\n")
        .filter((line) => line.trim().length > 0)
        .map((line) => JSON.parse(line) as Message);
      if (!messages.every((m) => typeof m === "object" && m !== null && Array.isArray(m.content))) {
        throw new Error("not messages");
      }
    } catch {
      gaps.push({ kind: "corrupt-checkpoint", description: `turns.jsonl at ${oid} cannot be read` });
      continue;
    }
    let fresh = messages.slice(previousCount);
    if (messages.length < previousCount) {
      if (!regressionSeen) {
        gaps.push({
          kind: "message-count-regression",
          description: `the conversation shrank from ${previousCount} to ${messages.length} messages at ${oid}`,
        });
        regressionSeen = true;
      }
      fresh = messages;
      current = null;
    }
    previousCount = messages.length;
    const touched = new Set<OpenTurn>();
    for (const message of fresh) {
      const blocks = message.content as Block[];
      const timestamp = typeof message.timestamp === "number" ? message.timestamp : commit.committer.timestamp * 1000;
      if (message.role === "user" && blocks[0]?.type !== "tool_result") {
        current = { blocks: [], timestamp, event: null };
        touched.add(current);
        continue;
      }
      if (!current) {
        current = { blocks: [], timestamp, event: null };
      }
      touched.add(current);
      if (message.role === "assistant") {
        const text = textOf(blocks);
        if (text) current.blocks.push(text);
        current.timestamp = timestamp;
      }
    }
    for (const turn of touched) {
      if (turn.blocks.length === 0) continue;
      const content = turn.blocks[turn.blocks.length - 1] as string;
      if (!turn.event) {
        turn.event = { kind: "turn", content, timestamp: turn.timestamp, status };
        events.push(turn.event);
      }
      turn.event.content = content;
      turn.event.timestamp = turn.timestamp;
      turn.event.status = status;
      if (status === "error") turn.event.isError = true;
      lastTurnEvent = turn.event;
    }
  }

  const tipTree = parseCommit((await store.get(tip)).body).tree;
  const mailFiles = [...(await filesUnder(store, tipTree, "state/mail"))].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  for (const [path, blob] of mailFiles) {
    const direction = /-(in|out)\.eml$/.exec(path)?.[1] as "in" | "out" | undefined;
    if (!direction) continue;
    const raw = decoder.decode((await store.get(blob)).body);
    const messageId = header(raw, "Message-ID") ?? "";
    const committed = mailCommits.get(messageId);
    if (!committed) gaps.push({ kind: "orphan-mail", description: `${path} has no mail commit` });
    events.push({
      kind: "mail",
      direction,
      messageId,
      timestamp: committed?.timestamp ?? 0,
      raw,
      ...(committed?.checkpointHash ? { checkpointHash: committed.checkpointHash } : {}),
    });
  }
  events.sort((a, b) => a.timestamp - b.timestamp);
  return { events, gaps };
}

/** What the hub recorded of an instance, with each item's place in the event log where it is still there. */
export type HubRecords = {
  turns: { id: string; status: string; startedAt: number; endedAt: number | null; model: string }[];
  mail: { id: string; direction: "inbound" | "outbound"; messageId: string | null; createdAt: number }[];
  /** Event-log cursors (the `Last-Event-ID` that replays the item): by turn id and by mail id. */
  cursors: { turns: Record<string, number>; mail: Record<string, number> };
};

export type TimelineItem =
  | (Omit<TimelineTurn, "timestamp"> & {
      timestamp: string;
      turnId: string | null;
      model: string | null;
      cursor: number | null;
      source: "hub" | "state" | "both";
    })
  | (Omit<TimelineMail, "timestamp" | "raw"> & {
      timestamp: string;
      mailId: string | null;
      raw: string | null;
      cursor: number | null;
      source: "hub" | "state" | "both";
    });

const turnStatus = (status: string): TimelineTurn["status"] =>
  status === "completed" ? "completed" : status === "running" ? "in-progress" : "error";

/**
 * One timeline from both sources: mail is matched by Message-ID; a rebuilt turn is matched to the hub's
 * turn that started last before its answer. The hub's status and cursor win; the repository adds content
 * and error records, and whatever the hub no longer holds.
 */
export function mergeTimeline(state: ReconstructedTimeline, hub: HubRecords): TimelineItem[] {
  const items: (TimelineItem & { at: number })[] = [];
  const hubTurns = [...hub.turns].sort((a, b) => a.startedAt - b.startedAt);
  const matchedTurns = new Set<string>();
  const stateMail = new Map<string, TimelineMail>();
  for (const event of state.events) {
    if (event.kind === "mail") {
      stateMail.set(event.messageId, event);
      continue;
    }
    const candidates = hubTurns.filter((t) => !matchedTurns.has(t.id) && t.startedAt <= event.timestamp + 2_000);
    const match = candidates[candidates.length - 1];
    if (match) matchedTurns.add(match.id);
    items.push({
      ...event,
      at: event.timestamp,
      timestamp: new Date(event.timestamp).toISOString(),
      ...(match && turnStatus(match.status) === "error" ? { status: "error" as const, isError: true } : {}),
      turnId: match?.id ?? null,
      model: match?.model ?? null,
      cursor: match ? (hub.cursors.turns[match.id] ?? null) : null,
      source: match ? "both" : "state",
    });
  }
  for (const turn of hubTurns) {
    if (matchedTurns.has(turn.id)) continue;
    const status = turnStatus(turn.status);
    items.push({
      kind: "turn",
      content: "",
      at: turn.startedAt,
      timestamp: new Date(turn.startedAt).toISOString(),
      status,
      ...(status === "error" ? { isError: true } : {}),
      turnId: turn.id,
      model: turn.model,
      cursor: hub.cursors.turns[turn.id] ?? null,
      source: "hub",
    });
  }
  const seenMail = new Set<string>();
  for (const mail of hub.mail) {
    const fromState = mail.messageId ? stateMail.get(mail.messageId) : undefined;
    if (fromState) seenMail.add(fromState.messageId);
    items.push({
      kind: "mail",
      direction: mail.direction === "inbound" ? "in" : "out",
      messageId: mail.messageId ?? "",
      at: mail.createdAt,
      timestamp: new Date(mail.createdAt).toISOString(),
      ...(fromState?.checkpointHash ? { checkpointHash: fromState.checkpointHash } : {}),
      mailId: mail.id,
      raw: fromState?.raw ?? null,
      cursor: hub.cursors.mail[mail.id] ?? null,
      source: fromState ? "both" : "hub",
    });
  }
  for (const mail of stateMail.values()) {
    if (seenMail.has(mail.messageId)) continue;
    items.push({
      ...mail,
      at: mail.timestamp,
      timestamp: new Date(mail.timestamp).toISOString(),
      mailId: null,
      cursor: null,
      source: "state",
    });
  }
  // Stable: a mail and the turn it started share a moment; the mail comes first when it was recorded first.
  return items
    .sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === "mail" ? -1 : 1))
    .map(({ at: _at, ...item }) => item as TimelineItem);
}
