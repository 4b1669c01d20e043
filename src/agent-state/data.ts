/**
 * Reading a state repository for people: its files at a ref, its history with what each commit changed
 * (paths and line counts, as `git show --stat` counts them), its branches, and restoring an earlier tree
 * as a new commit. Pages use the API's cursors: history by (commit time, id), files by path.
 */
import { diffLines } from "diff";
import type { Db } from "../db/client";
import { decodeCursor, encodeCursor, type Page, type PageQuery } from "../db/pagination";
import { badRequest, notFound } from "../errors";
import { type Commit, parseCommit } from "../git/objects/object";
import { isOid } from "../git/objects/oid";
import { commitOnRef } from "../git/service/hub-commit";
import { type OpenedRepository, openRepository } from "../git/service/repository";
import type { ObjectStore } from "../git/storage/object-store";
import { bytesToBase64 } from "../lib/base64";
import { hubSigningKey } from "../secrets/hub-signing-key";
import type { StateRepository } from "./repositories";
import { blobAtPath, filesOfTree } from "./tree-files";

export type FileEntry = { path: string; type: "file" | "directory"; size?: number };
export type FileContent = { path: string; content: string; encoding: "utf-8" | "base64" };
export type HistoryEntry = {
  ref: string;
  message: string;
  author: string;
  timestamp: string;
  filesChanged: number;
};
export type FileChange = {
  path: string;
  status: "added" | "modified" | "deleted";
  additions?: number;
  deletions?: number;
};
export type CommitDetail = Omit<HistoryEntry, "filesChanged"> & { parents: string[]; changes: FileChange[] };
export type BranchInfo = {
  name: string;
  isCurrent: boolean;
  lastCommitRef: string;
  lastCommitMessage: string;
  lastCommitAt: string;
};

/** History is walked at most this far (the newest commits first). */
const MAX_HISTORY_WALK = 10_000;
/** Files larger than this are listed as changed without line counts. */
const MAX_DIFF_BYTES = 1024 * 1024;

/** The repository opened for reading; a never-pushed instance reads as empty. */
export function openState(db: Db, bucket: R2Bucket, repo: StateRepository): Promise<OpenedRepository> {
  return openRepository(db, bucket, repo.repositoryId, { head: repo.defaultRef });
}

/** A ref name (`main`, `refs/heads/main`) or a commit id, resolved to a commit; 404 when there is none. */
export async function resolveCommit(opened: OpenedRepository, ref: string): Promise<string> {
  const { refs, store } = opened;
  const named = refs.find((r) => r.name === ref || r.name === `refs/heads/${ref}` || r.name === `refs/tags/${ref}`);
  const oid = named?.oid ?? (isOid(ref) ? ref : null);
  if (!oid) throw notFound(`No ref or commit ${ref}`);
  const object = await store.read(oid);
  if (object?.type !== "commit") throw notFound(`No commit ${ref}`);
  return oid;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function utf8(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return null;
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

const commitOf = async (store: ObjectStore, oid: string): Promise<Commit> => parseCommit((await store.get(oid)).body);

/** The files and directories under `path` at the commit, sorted by path, a page at a time. */
export async function listFiles(
  store: ObjectStore,
  commitOid: string,
  path: string,
  page: PageQuery,
): Promise<Page<FileEntry>> {
  const files = await filesOfTree(store, (await commitOf(store, commitOid)).tree);
  const prefix = path ? `${path.replace(/\/+$/, "")}/` : "";
  const entries = new Map<string, FileEntry>();
  for (const [file, oid] of files) {
    if (!file.startsWith(prefix)) continue;
    const parts = file.slice(prefix.length).split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = prefix + parts.slice(0, i).join("/");
      entries.set(dir, { path: dir, type: "directory" });
    }
    entries.set(file, { path: file, type: "file", size: (await store.get(oid)).body.byteLength });
  }
  if (prefix && entries.size === 0) throw notFound(`No directory ${path}`);
  const after = page.cursor === undefined ? null : decodeCursor(page.cursor).id;
  const sorted = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const rest = after === null ? sorted : sorted.filter((e) => e.path > after);
  const data = rest.slice(0, page.limit);
  const last = data[data.length - 1];
  return { data, nextCursor: rest.length > page.limit && last ? encodeCursor({ t: 0, id: last.path }) : null };
}

/** One file's content at the commit: text when it is UTF-8, base64 otherwise. */
export async function readFile(store: ObjectStore, commitOid: string, path: string): Promise<FileContent> {
  const clean = path.split("/").filter(Boolean).join("/");
  if (!clean) throw badRequest("A file path is required");
  const bytes = await blobAtPath(store, (await commitOf(store, commitOid)).tree, clean);
  if (!bytes) throw notFound(`No file ${path}`);
  const text = utf8(bytes);
  return text === null
    ? { path: clean, content: bytesToBase64(bytes), encoding: "base64" }
    : { path: clean, content: text, encoding: "utf-8" };
}

const isoTime = (seconds: number) => new Date(seconds * 1000).toISOString();

/** A request's memo of the files of each tree it read: a history page reads each tree once, not twice. */
type TreeFiles = Map<string, Promise<Map<string, string>>>;

async function changesOf(
  store: ObjectStore,
  commit: Commit,
  withLines: boolean,
  trees: TreeFiles = new Map(),
): Promise<FileChange[]> {
  const filesOf = (tree: string) => {
    const known = trees.get(tree);
    if (known) return known;
    const files = filesOfTree(store, tree);
    trees.set(tree, files);
    return files;
  };
  const after = await filesOf(commit.tree);
  const parent = commit.parents[0];
  const before = parent ? await filesOf((await commitOf(store, parent)).tree) : new Map<string, string>();
  const changes: FileChange[] = [];
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const path of paths) {
    const a = before.get(path);
    const b = after.get(path);
    if (a === b) continue;
    const status = a === undefined ? "added" : b === undefined ? "deleted" : "modified";
    const change: FileChange = { path, status };
    if (withLines) Object.assign(change, await lineCounts(store, a, b));
    changes.push(change);
  }
  return changes;
}

/** Lines added and removed, as git counts them; none for binary or very large files. */
async function lineCounts(store: ObjectStore, from: string | undefined, to: string | undefined) {
  const read = async (oid: string | undefined) => (oid ? (await store.get(oid)).body : new Uint8Array(0));
  const [a, b] = await Promise.all([read(from), read(to)]);
  if (a.byteLength > MAX_DIFF_BYTES || b.byteLength > MAX_DIFF_BYTES) return {};
  const textA = utf8(a);
  const textB = utf8(b);
  if (textA === null || textB === null) return {};
  let additions = 0;
  let deletions = 0;
  for (const part of diffLines(textA, textB)) {
    if (part.added) additions += part.count ?? 0;
    else if (part.removed) deletions += part.count ?? 0;
  }
  return { additions, deletions };
}

function entryOf(oid: string, commit: Commit): Omit<HistoryEntry, "filesChanged"> {
  return {
    ref: oid,
    message: commit.message.replace(/\n+$/, ""),
    author: `${commit.author.name} <${commit.author.email}>`,
    timestamp: isoTime(commit.author.timestamp),
  };
}

/** Commits reachable from `tip`, newest first (by commit time), a page at a time. */
export async function listHistory(store: ObjectStore, tip: string, page: PageQuery): Promise<Page<HistoryEntry>> {
  const after = page.cursor === undefined ? null : decodeCursor(page.cursor);
  const before = (t: number, id: string) => !after || t < after.t || (t === after.t && id < after.id);
  const seen = new Set([tip]);
  const queue: { oid: string; commit: Commit }[] = [{ oid: tip, commit: await commitOf(store, tip) }];
  const data: HistoryEntry[] = [];
  const trees: TreeFiles = new Map();
  let more = false;
  for (let walked = 0; queue.length > 0 && walked < MAX_HISTORY_WALK; walked++) {
    // The newest pending commit next, as `git log` orders them.
    queue.sort((x, y) => y.commit.committer.timestamp - x.commit.committer.timestamp || (x.oid < y.oid ? 1 : -1));
    const { oid, commit } = queue.shift() as { oid: string; commit: Commit };
    for (const parent of commit.parents) {
      if (seen.has(parent) || !store.has(parent)) continue;
      seen.add(parent);
      queue.push({ oid: parent, commit: await commitOf(store, parent) });
    }
    if (!before(commit.committer.timestamp * 1000, oid)) continue;
    if (data.length === page.limit) {
      more = true;
      break;
    }
    data.push({ ...entryOf(oid, commit), filesChanged: (await changesOf(store, commit, false, trees)).length });
  }
  const last = data[data.length - 1];
  const lastCommit = last ? await commitOf(store, last.ref) : null;
  return {
    data,
    nextCursor:
      more && last && lastCommit ? encodeCursor({ t: lastCommit.committer.timestamp * 1000, id: last.ref }) : null,
  };
}

/** One commit with each file it added, modified or deleted and the lines it changed. */
export async function commitDetail(store: ObjectStore, oid: string): Promise<CommitDetail> {
  const commit = await commitOf(store, oid);
  return { ...entryOf(oid, commit), parents: commit.parents, changes: await changesOf(store, commit, true) };
}

export async function listBranches(opened: OpenedRepository): Promise<BranchInfo[]> {
  const { refs, repository, store } = opened;
  const branches: BranchInfo[] = [];
  for (const ref of refs) {
    if (!ref.name.startsWith("refs/heads/")) continue;
    const commit = await commitOf(store, ref.oid);
    branches.push({
      name: ref.name.slice("refs/heads/".length),
      isCurrent: ref.name === repository.head,
      lastCommitRef: ref.oid,
      lastCommitMessage: commit.message.replace(/\n+$/, ""),
      lastCommitAt: isoTime(commit.committer.timestamp),
    });
  }
  return branches;
}

/**
 * Restores an earlier commit's tree on a branch as a new hub-signed commit on top of it (history is kept).
 * Returns the new commit.
 */
export async function restoreCommit(
  env: Env,
  db: Db,
  repo: StateRepository,
  input: { commit: string; branch: string; tenantId: string },
): Promise<{ commitOid: string; branch: string; tree: string }> {
  const opened = await openState(db, env.BLOBS, repo);
  const oid = await resolveCommit(opened, input.commit);
  const branch = input.branch.startsWith("refs/") ? input.branch : `refs/heads/${input.branch}`;
  if (!opened.refs.some((r) => r.name === branch)) throw notFound(`No branch ${input.branch}`);
  const { tree } = await commitOf(opened.store, oid);
  const { commitOid } = await commitOnRef(db, env.BLOBS, {
    repositoryId: repo.repositoryId,
    tenantId: input.tenantId,
    ref: branch,
    message: `Restore ${oid}`,
    key: await hubSigningKey(env.SECRETS_KEY),
    content: { tree },
  });
  return { commitOid, branch, tree };
}
