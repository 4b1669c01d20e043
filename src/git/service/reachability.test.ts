import { describe, expect, it } from "vitest";
import { hashObject, type ObjectType, serializeCommit, serializeTag } from "../objects/object";
import type { GitObject } from "../storage/object-store";
import { planFetch, wantsReachCommons } from "./reachability";

const TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"; // the empty tree

/** An in-memory repository: commits by name, each with its parents and a committer time. */
function repository() {
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
  const commit = (message: string, parents: string[], time: number) =>
    put(
      "commit",
      serializeCommit({
        tree: TREE,
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
  /** A line of `n` commits on `from`, one second apart; returns them oldest first. */
  const line = (n: number, from: string | null, start: number) => {
    const out: string[] = [];
    let parent = from;
    for (let i = 0; i < n; i++) {
      parent = commit(`c${start + i}`, parent ? [parent] : [], 1_700_000_000 + start + i);
      out.push(parent);
    }
    return out;
  };
  return { source, commit, tag, line, reads: () => reads };
}

describe("wantsReachCommons (when the server may say ready)", () => {
  it("is ready when every want reaches a common through its parents", async () => {
    const r = repository();
    const history = r.line(50, null, 0);
    const tip = history[49] as string;
    const [next] = r.line(1, tip, 100);
    expect(await wantsReachCommons(r.source, [next as string], [tip])).toBe(true);
    // A common further back is reached too, and a tag want peels to its commit.
    expect(await wantsReachCommons(r.source, [r.tag(next as string, "v1")], [history[10] as string])).toBe(true);
  });

  it("is not ready while a want reaches none of the commons", async () => {
    const r = repository();
    const main = r.line(10, null, 0);
    const side = r.line(5, null, 50); // an unrelated root
    const wants = [main[9] as string, side[4] as string];
    expect(await wantsReachCommons(r.source, wants, [main[3] as string])).toBe(false);
    expect(await wantsReachCommons(r.source, wants, [main[3] as string, side[0] as string])).toBe(true);
    expect(await wantsReachCommons(r.source, wants, [])).toBe(false);
  });

  it("does not walk past commits older than the oldest common", async () => {
    const r = repository();
    const old = r.line(500, null, 0);
    // A branch from the root that merged nothing: reaching its common means walking to the root.
    const [common] = r.line(1, old[0] as string, 10_000);
    const before = r.reads();
    expect(await wantsReachCommons(r.source, [old[499] as string], [common as string])).toBe(false);
    // Only the commits newer than the common (none here but the want) were read.
    expect(r.reads() - before).toBeLessThan(10);
  });

  it("gives up (not ready) after a bounded walk", async () => {
    const r = repository();
    const history = r.line(3_000, null, 0);
    expect(await wantsReachCommons(r.source, [history[2_999] as string], [history[0] as string])).toBe(false);
    expect(await wantsReachCommons(r.source, [history[2_999] as string], [history[2_000] as string])).toBe(true);
  });

  it("leaves the pack exact: a ready answer's plan sends only what the commons do not reach", async () => {
    const r = repository();
    const history = r.line(20, null, 0);
    const [next] = r.line(1, history[19] as string, 100);
    const plan = await planFetch(r.source, { wants: [next as string], haves: [history[19] as string] });
    expect(plan.objects.map((o) => o.oid)).toEqual([next]);
  });
});
