/** Helpers for this folder's tests: a repository in memory, built commit by commit. */
import { hashObject, type ObjectType, serializeCommit, serializeTag, serializeTree } from "../objects/object";
import type { GitObject } from "../storage/object-store";

export const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/** The time of commit `c<n>` made by `line`: one second apart from a fixed start. */
export const commitTime = (n: number) => 1_700_000_000 + n;

const encoder = new TextEncoder();

/** A tree's entries: a blob's text, or a subtree. */
export type TreeSpec = { [name: string]: string | TreeSpec };

/** An in-memory repository: commits by name, each with its parents, a committer time and a tree. */
export function memoryRepository() {
  const objects = new Map<string, GitObject>();
  const put = (type: ObjectType, body: Uint8Array) => {
    const oid = hashObject(type, body);
    objects.set(oid, { type, body });
    return oid;
  };
  put("tree", new Uint8Array());
  let reads = 0;
  const source = {
    read: async (oid: string) => {
      reads++;
      return objects.get(oid);
    },
    has: (oid: string) => objects.has(oid),
  };
  const blob = (text: string) => put("blob", encoder.encode(text));
  const tree = (spec: TreeSpec): string =>
    put(
      "tree",
      serializeTree(
        Object.entries(spec).map(([name, entry]) =>
          typeof entry === "string"
            ? { mode: "100644", name, oid: blob(entry) }
            : { mode: "40000", name, oid: tree(entry) },
        ),
      ),
    );
  const commit = (message: string, parents: string[], time: number, treeOid = EMPTY_TREE) =>
    put(
      "commit",
      serializeCommit({
        tree: treeOid,
        parents,
        author: { name: "A", email: "a@example.test", timestamp: time, timezone: "+0000" },
        committer: { name: "A", email: "a@example.test", timestamp: time, timezone: "+0000" },
        extraHeaders: [],
        message: `${message}\n`,
      }),
    );
  const tag = (target: string, name: string) =>
    put(
      "tag",
      serializeTag({
        object: target,
        type: "commit",
        tag: name,
        tagger: { name: "A", email: "a@example.test", timestamp: 1, timezone: "+0000" },
        extraHeaders: [],
        message: `${name}\n`,
      }),
    );
  /** A line of `n` commits on `from`, made at `commitTime(start + i)`; returns them oldest first. */
  const line = (n: number, from: string | null, start: number) => {
    const out: string[] = [];
    let parent = from;
    for (let i = 0; i < n; i++) {
      parent = commit(`c${start + i}`, parent ? [parent] : [], commitTime(start + i));
      out.push(parent);
    }
    return out;
  };
  return { source, blob, tree, commit, tag, line, reads: () => reads };
}
