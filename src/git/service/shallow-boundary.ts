/**
 * The shallow boundary of `deepen-since`, `deepen-not` and `deepen-relative` requests, as git's upload-pack
 * draws it: first the commits to send are chosen, then every chosen commit with a parent left out is
 * shallow. (`deepen <n>` alone is walked by planFetch itself.)
 */
import type { Commit } from "../objects/object";
import { CommitQueue } from "./commit-queue";
import { type ObjectSource, peelWants, readCommit } from "./reachability";

export type ShallowBoundary = {
  /** `shallow` lines: chosen commits with a parent left out, except those the client has as shallow already. */
  shallow: string[];
  /** `unshallow` lines: the client's shallow commits whose parents are all chosen now. */
  unshallow: string[];
  /**
   * The parents of the unshallowed commits. The pack's walk starts from them as well as from the wants,
   * and stops at every shallow commit, old or new: the client's haves say nothing about what lies below
   * its boundary.
   */
  parentsOfUnshallowed: string[];
};

function boundaryOf(chosen: ReadonlyMap<string, Commit>, clientShallows: readonly string[]): ShallowBoundary {
  const cut = new Set<string>();
  for (const [oid, commit] of chosen) if (commit.parents.some((p) => !chosen.has(p))) cut.add(oid);
  const client = new Set(clientShallows);
  const unshallow = [...client].filter((oid) => chosen.has(oid) && !cut.has(oid));
  return {
    shallow: [...cut].filter((oid) => !client.has(oid)),
    unshallow,
    parentsOfUnshallowed: [...new Set(unshallow.flatMap((oid) => (chosen.get(oid) as Commit).parents))],
  };
}

export type RevListCut = {
  wants: readonly string[];
  /** `deepen-since`: commits older than this (committer time, seconds) are not chosen, nor walked past. */
  since: number | null;
  /** `deepen-not`, resolved: nothing these reach is chosen. */
  excludes: readonly string[];
  clientShallows: readonly string[];
};

/**
 * `git rev-list --max-age=<since> <wants> --not <excludes>`: the commits chosen are those the wants reach
 * through commits no older than `since`, minus what the excludes reach. Walked newest first, it stops as
 * soon as only excluded commits are left. Null when nothing is chosen (git refuses such a request).
 */
export async function revListBoundary(source: ObjectSource, cut: RevListCut): Promise<ShallowBoundary | null> {
  const { commits: wanted } = await peelWants(source, cut.wants);
  const { commits: excluded } = await peelWants(source, cut.excludes);
  type State = { excluded: boolean; popped: boolean; commit: Commit };
  const states = new Map<string, State>();
  const queue = new CommitQueue();
  let candidates = 0;
  const enqueue = async (oid: string, isExcluded: boolean) => {
    const known = states.get(oid);
    if (known) {
      if (isExcluded && !known.excluded) {
        known.excluded = true;
        if (!known.popped) candidates--;
      }
      return;
    }
    const commit = await readCommit(source, oid);
    states.set(oid, { excluded: isExcluded, popped: false, commit });
    if (!isExcluded) candidates++;
    queue.push(oid, commit.committer.timestamp);
  };
  for (const oid of excluded) await enqueue(oid, true);
  for (const oid of wanted) await enqueue(oid, false);

  const chosen = new Map<string, Commit>();
  while (queue.size > 0 && candidates > 0) {
    const { oid } = queue.pop() as { oid: string };
    const state = states.get(oid) as State;
    state.popped = true;
    if (!state.excluded) {
      candidates--;
      if (cut.since !== null && state.commit.committer.timestamp < cut.since) continue;
      chosen.set(oid, state.commit);
    }
    for (const parent of state.commit.parents) await enqueue(parent, state.excluded);
  }
  return chosen.size === 0 ? null : boundaryOf(chosen, cut.clientShallows);
}

/**
 * `deepen <depth>` with `deepen-relative`: `depth` more commits below the client's current boundary, so
 * the cut is `depth + 1` commits deep counted from each of its shallow commits (as git counts it).
 */
export async function relativeBoundary(
  source: ObjectSource,
  clientShallows: readonly string[],
  depth: number,
): Promise<ShallowBoundary> {
  const chosen = new Map<string, Commit>();
  let frontier = [...new Set(clientShallows)].filter((oid) => source.has(oid));
  const seen = new Set(frontier);
  for (let level = 1; frontier.length > 0 && level <= depth + 1; level++) {
    const next: string[] = [];
    for (const oid of frontier) {
      const commit = await readCommit(source, oid);
      chosen.set(oid, commit);
      if (level > depth) continue;
      for (const parent of commit.parents) {
        if (seen.has(parent)) continue;
        seen.add(parent);
        next.push(parent);
      }
    }
    frontier = next;
  }
  return boundaryOf(chosen, clientShallows);
}
