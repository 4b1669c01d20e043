/**
 * Which objects a fetch must send: everything reachable from the wants, minus what the client already
 * has (reachable from the common haves), optionally cut at a depth (shallow clones).
 *
 * The commit walk goes newest first by committer date, as git's does, and stops as soon as every commit
 * left in the queue is one the client has; it never walks the whole history of an incremental fetch.
 */
import { GitFormatError } from "../objects/errors";
import { type Commit, type ObjectType, parseCommit, parseTag, parseTree, treeEntryType } from "../objects/object";
import type { GitObject } from "../storage/object-store";
import { CommitQueue } from "./commit-queue";
import { type FilterPolicy, KEEP_EVERYTHING } from "./object-filter";

export type ObjectSource = {
  read(oid: string): Promise<GitObject | undefined>;
  has(oid: string): boolean;
};

export type FetchPlan = {
  wants: readonly string[];
  /** Haves the repository knows (the common commits). */
  haves: readonly string[];
  /** `deepen <n>`: at most this many commits deep from each want. */
  depth?: number | undefined;
  /**
   * The client's current shallow boundary (`shallow <oid>` lines). Without a depth, the walk goes past
   * none of them, from either side: the client lacks what is below, whatever its haves reach.
   */
  clientShallows?: readonly string[] | undefined;
  /** Annotated tags to consider for include-tag: tag object id → the commit it peels to. */
  includeTags?: ReadonlyMap<string, string> | undefined;
  /** A partial clone's filter over the trees and blobs below the commits (object-filter.ts). */
  filter?: FilterPolicy | undefined;
};

export type FetchObjects = {
  /** Objects to send, commits first (newest first), then their trees and blobs. */
  objects: { oid: string; type: ObjectType }[];
  /** Objects the client is known to have (usable as thin-pack delta bases). */
  clientHas: Set<string>;
  /** Commits sent without their parents (depth cut). */
  shallow: string[];
  /** Commits the client had as shallow whose parents are now sent. */
  unshallow: string[];
};

export async function readCommit(source: ObjectSource, oid: string): Promise<Commit> {
  const object = await source.read(oid);
  if (!object) throw new GitFormatError(`commit ${oid} is missing`);
  if (object.type !== "commit") throw new GitFormatError(`${oid} is a ${object.type}, not a commit`);
  return parseCommit(object.body);
}

/** Peels wanted tags to their targets; returns the tag objects to send and the commit wants. */
export async function peelWants(source: ObjectSource, wants: readonly string[]) {
  const tags: string[] = [];
  const commits: string[] = [];
  const others: { oid: string; type: ObjectType }[] = [];
  for (const want of wants) {
    let oid = want;
    for (let hops = 0; ; hops++) {
      const object = await source.read(oid);
      if (!object) throw new GitFormatError(`want ${oid} is missing`);
      if (object.type === "tag") {
        if (hops > 16) throw new GitFormatError(`tag chain at ${want} is too long`);
        tags.push(oid);
        oid = parseTag(object.body).object;
        continue;
      }
      if (object.type === "commit") commits.push(oid);
      else others.push({ oid, type: object.type });
      break;
    }
  }
  return { tags, commits, others };
}

export async function planFetch(source: ObjectSource, plan: FetchPlan): Promise<FetchObjects> {
  const { tags, commits: wantCommits, others } = await peelWants(source, plan.wants);
  const commitsToSend: { oid: string; commit: Commit }[] = [];
  const shallow: string[] = [];
  const uninteresting = new Set<string>();
  const clientShallows = new Set(plan.clientShallows ?? []);
  const boundary = new Set<string>();

  if (plan.depth !== undefined) {
    // Breadth-first to the requested depth; haves still stop the walk.
    // A shallow client's haves sit above its boundary: deepening walks through them, so only an unshallow
    // client's haves stop the walk (a deepened client may receive a few objects again).
    const haves = new Set(clientShallows.size > 0 ? [] : plan.haves.filter((h) => source.has(h)));
    for (const h of haves) uninteresting.add(h);
    let frontier = wantCommits.filter((w) => !haves.has(w));
    const seen = new Set(frontier);
    for (let level = 1; frontier.length > 0; level++) {
      const next: string[] = [];
      for (const oid of frontier) {
        const commit = await readCommit(source, oid);
        commitsToSend.push({ oid, commit });
        const parents = commit.parents.filter((p) => !haves.has(p));
        if (level >= plan.depth) {
          if (commit.parents.length > 0) shallow.push(oid);
          continue;
        }
        for (const p of commit.parents) if (haves.has(p)) boundary.add(p);
        for (const p of parents) {
          if (!seen.has(p)) {
            seen.add(p);
            next.push(p);
          }
        }
      }
      frontier = next;
    }
  } else {
    type WalkState = { uninteresting: boolean; popped: boolean; commit: Commit };
    const states = new Map<string, WalkState>();
    const queue = new CommitQueue();
    let interestingQueued = 0;
    const enqueue = async (oid: string, isUninteresting: boolean) => {
      const known = states.get(oid);
      if (known) {
        // Seen already: only an upgrade to uninteresting matters.
        if (isUninteresting && !known.uninteresting) {
          known.uninteresting = true;
          if (!known.popped) interestingQueued--;
        }
        return;
      }
      const commit = await readCommit(source, oid);
      states.set(oid, { uninteresting: isUninteresting, popped: false, commit });
      if (!isUninteresting) interestingQueued++;
      queue.push(oid, commit.committer.timestamp);
    };
    for (const have of plan.haves) if (source.has(have)) await enqueue(have, true);
    for (const want of wantCommits) await enqueue(want, false);
    // Stop once only commits the client has are left: their ancestors are the client's too.
    while (queue.size > 0 && interestingQueued > 0) {
      const item = queue.pop() as { oid: string };
      const state = states.get(item.oid) as WalkState;
      state.popped = true;
      if (!state.uninteresting) {
        interestingQueued--;
        commitsToSend.push({ oid: item.oid, commit: state.commit });
      }
      // A client that is shallow here lacks the parents: neither send them nor count them as had.
      if (clientShallows.has(item.oid)) continue;
      for (const parent of state.commit.parents) await enqueue(parent, state.uninteresting);
    }
    for (const [oid, state] of states) if (state.uninteresting) uninteresting.add(oid);
    // Commits popped as interesting before an uninteresting descendant reached them (clock skew) stay in.
    for (const { commit } of commitsToSend) {
      for (const parent of commit.parents) if (uninteresting.has(parent)) boundary.add(parent);
    }
  }

  // Everything in the trees of the boundary commits the client has.
  const clientHas = new Set<string>(uninteresting);
  const markTree = async (treeOid: string) => {
    if (clientHas.has(treeOid)) return;
    clientHas.add(treeOid);
    const tree = await source.read(treeOid);
    if (tree?.type !== "tree") return;
    for (const entry of parseTree(tree.body)) {
      const type = treeEntryType(entry.mode);
      if (type === "tree") await markTree(entry.oid);
      else if (type === "blob") clientHas.add(entry.oid);
    }
  };
  for (const oid of boundary) {
    const object = await source.read(oid);
    if (object?.type === "commit") await markTree(parseCommit(object.body).tree);
  }

  const objects: { oid: string; type: ObjectType }[] = [];
  const sent = new Set<string>();
  const add = (oid: string, type: ObjectType) => {
    if (sent.has(oid) || clientHas.has(oid)) return;
    sent.add(oid);
    objects.push({ oid, type });
  };
  for (const tag of tags) add(tag, "tag");
  for (const { oid } of commitsToSend) add(oid, "commit");
  if (plan.includeTags) {
    for (const [tagOid, target] of plan.includeTags) if (sent.has(target)) add(tagOid, "tag");
  }
  const filter = plan.filter ?? KEEP_EVERYTHING;
  // Each tree's shallowest depth so far: a depth filter keeps more of a tree met again nearer the root.
  const walkedAt = new Map<string, number>();
  const addTree = async (treeOid: string, depth: number, wanted = false) => {
    if (clientHas.has(treeOid)) return;
    const before = walkedAt.get(treeOid);
    if (before !== undefined && (before <= depth || !filter.byDepth)) return;
    if (!wanted && !filter.keepsTree(depth)) return;
    walkedAt.set(treeOid, depth);
    add(treeOid, "tree");
    const tree = await source.read(treeOid);
    if (!tree) throw new GitFormatError(`tree ${treeOid} is missing`);
    for (const entry of parseTree(tree.body)) {
      const type = treeEntryType(entry.mode);
      if (type === "tree") await addTree(entry.oid, depth + 1);
      else if (type === "blob" && !sent.has(entry.oid) && !clientHas.has(entry.oid)) {
        if (await filter.keepsBlob(entry.oid, depth + 1)) add(entry.oid, "blob");
      }
      // Gitlinks (submodule commits) live in other repositories.
    }
  };
  for (const { commit } of commitsToSend) await addTree(commit.tree, 0);
  // What the client names by id is sent whatever the filter (a partial clone fetching what it lacks).
  for (const other of others) {
    if (other.type === "tree") await addTree(other.oid, 0, true);
    else add(other.oid, other.type);
  }
  const unshallow =
    plan.depth === undefined
      ? []
      : commitsToSend.filter(({ oid }) => clientShallows.has(oid) && !shallow.includes(oid)).map(({ oid }) => oid);
  return { objects, clientHas, shallow, unshallow };
}

/**
 * Which of `targets` the tips reach (allow-reachable-sha1-in-want). Commits are walked newest first, each
 * with its tree, and the walk ends once every target is found: a partial clone's checkout, which asks for
 * the blobs of a tip's tree, is answered after reading that one tree. A target nothing reaches costs a
 * walk of everything the tips reach.
 */
export async function reachableTargets(
  source: ObjectSource,
  tips: readonly string[],
  targets: ReadonlySet<string>,
): Promise<Set<string>> {
  const left = new Set(targets);
  const found = new Set<string>();
  const mark = (oid: string) => {
    if (left.delete(oid)) found.add(oid);
  };
  const seenTrees = new Set<string>();
  const walkTree = async (treeOid: string) => {
    if (seenTrees.has(treeOid) || left.size === 0) return;
    seenTrees.add(treeOid);
    mark(treeOid);
    const tree = await source.read(treeOid);
    if (tree?.type !== "tree") return;
    for (const entry of parseTree(tree.body)) {
      if (treeEntryType(entry.mode) === "tree") await walkTree(entry.oid);
      else mark(entry.oid);
    }
  };
  const { tags, commits, others } = await peelWants(source, tips);
  for (const oid of tags) mark(oid);
  for (const other of others) {
    if (other.type === "tree") await walkTree(other.oid);
    else mark(other.oid);
  }
  const queue = new CommitQueue();
  const parsed = new Map<string, Commit>();
  const enqueue = async (oid: string) => {
    if (parsed.has(oid)) return;
    const commit = await readCommit(source, oid);
    parsed.set(oid, commit);
    queue.push(oid, commit.committer.timestamp);
  };
  for (const oid of commits) await enqueue(oid);
  while (queue.size > 0 && left.size > 0) {
    const { oid } = queue.pop() as { oid: string };
    const commit = parsed.get(oid) as Commit;
    mark(oid);
    await walkTree(commit.tree);
    for (const parent of commit.parents) await enqueue(parent);
  }
  return found;
}

/** Commits a readiness check reads at most before it answers "not ready" (the client then negotiates on). */
const READY_WALK_LIMIT = 2_000;

/**
 * Whether the commons found so far close the pack: every want (peeled to its commit) reaches one of them
 * through its parents. The server can then stop negotiating and send the pack (`ready`), as git's
 * upload-pack does. The walk from each want goes newest first and stops at commits older than the oldest
 * common (none of their ancestors can be one) or after READY_WALK_LIMIT commits in all.
 */
export async function wantsReachCommons(
  source: ObjectSource,
  wants: readonly string[],
  commons: readonly string[],
): Promise<boolean> {
  if (commons.length === 0 || wants.length === 0) return false;
  const common = new Set(commons);
  let oldest = Number.POSITIVE_INFINITY;
  for (const oid of commons) {
    const object = await source.read(oid);
    if (object?.type === "commit") oldest = Math.min(oldest, parseCommit(object.body).committer.timestamp);
  }
  const { commits, tags, others } = await peelWants(source, wants);
  if (others.length > 0 || tags.length + commits.length === 0) return false;
  let budget = READY_WALK_LIMIT;
  for (const want of commits) {
    if (common.has(want)) continue;
    const parsed = new Map<string, Commit>([[want, await readCommit(source, want)]]);
    const queue = new CommitQueue();
    queue.push(want, Number.POSITIVE_INFINITY);
    let found = false;
    while (queue.size > 0 && !found) {
      if (--budget < 0) return false;
      const commit = parsed.get((queue.pop() as { oid: string }).oid) as Commit;
      for (const parent of commit.parents) {
        if (common.has(parent)) {
          found = true;
          break;
        }
        if (parsed.has(parent) || !source.has(parent)) continue;
        const object = await source.read(parent);
        if (object?.type !== "commit") continue;
        const next = parseCommit(object.body);
        parsed.set(parent, next);
        if (next.committer.timestamp >= oldest) queue.push(parent, next.committer.timestamp);
      }
    }
    if (!found) return false;
  }
  return true;
}
