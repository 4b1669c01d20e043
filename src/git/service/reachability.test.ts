import { describe, expect, it } from "vitest";
import { parseFilterSpec } from "../protocol/filter-spec";
import { filterPolicy } from "./object-filter";
import { planFetch, reachableTargets, wantsReachCommons } from "./reachability";
import { commitTime, memoryRepository as repository } from "./test-support";

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

describe("planFetch with a partial-clone filter", () => {
  /** Two commits; the second changes a.txt and moves dir/sub up to the root as `up`. */
  function partialRepository() {
    const r = repository();
    const big = "x".repeat(2_000);
    const sub = { "c.txt": "deep\n" };
    const first = r.tree({ "a.txt": "one\n", "big.bin": big, dir: { "b.txt": "b\n", sub } });
    const second = r.tree({ "a.txt": "two\n", "big.bin": big, dir: { "b.txt": "b\n", sub }, up: sub });
    const c1 = r.commit("first", [], commitTime(1), first);
    const c2 = r.commit("second", [c1], commitTime(2), second);
    const oid = {
      a1: r.blob("one\n"),
      a2: r.blob("two\n"),
      big: r.blob(big),
      b: r.blob("b\n"),
      c: r.blob("deep\n"),
      dir: r.tree({ "b.txt": "b\n", sub }),
      sub: r.tree(sub),
      root1: first,
      root2: second,
    };
    const sizeOf = async (id: string) => (await r.source.read(id))?.body.length ?? 0;
    const plan = async (spec: string | null, wants = [c2]) => {
      const filter = spec === null ? undefined : filterPolicy(parseFilterSpec(spec), sizeOf);
      return new Set((await planFetch(r.source, { wants, haves: [], filter })).objects.map((o) => o.oid));
    };
    return { c1, c2, oid, plan };
  }

  it("blob:none sends commits and trees; blob:limit leaves out blobs of the limit or more", async () => {
    const { c1, c2, oid, plan } = partialRepository();
    const trees = [oid.root1, oid.root2, oid.dir, oid.sub];
    const blobs = [oid.a1, oid.a2, oid.big, oid.b, oid.c];
    expect(await plan(null)).toEqual(new Set([c2, c1, ...trees, ...blobs]));
    expect(await plan("blob:none")).toEqual(new Set([c2, c1, ...trees]));
    expect(await plan("blob:limit=2000")).toEqual(new Set([c2, c1, ...trees, oid.a1, oid.a2, oid.b, oid.c]));
    expect(await plan("blob:limit=2001")).toEqual(new Set([c2, c1, ...trees, ...blobs]));
  });

  it("tree:<depth> counts from the root tree, keeping a tree met nearer the root there", async () => {
    const { c1, c2, oid, plan } = partialRepository();
    expect(await plan("tree:0")).toEqual(new Set([c2, c1]));
    expect(await plan("tree:1")).toEqual(new Set([c2, c1, oid.root1, oid.root2]));
    // Depth 1: the root's blobs, dir and `up` (which is also dir/sub, at depth 2).
    expect(await plan("tree:2")).toEqual(
      new Set([c2, c1, oid.root1, oid.root2, oid.a1, oid.a2, oid.big, oid.dir, oid.sub]),
    );
    // sub is first walked at depth 2 (c2's dir/sub) and then at depth 1 (`up`): its blob is at depth 2 there.
    expect(await plan("tree:3")).toEqual(
      new Set([c2, c1, oid.root1, oid.root2, oid.a1, oid.a2, oid.big, oid.dir, oid.b, oid.sub, oid.c]),
    );
  });

  it("sends what is wanted by id whatever the filter: a missing blob, or a tree without its blobs", async () => {
    const { oid, plan } = partialRepository();
    expect(await plan("blob:none", [oid.big])).toEqual(new Set([oid.big]));
    expect(await plan("blob:none", [oid.dir])).toEqual(new Set([oid.dir, oid.sub]));
    expect(await plan("tree:0", [oid.dir])).toEqual(new Set([oid.dir]));
  });
});

describe("planFetch for a shallow client", () => {
  it("walks past none of the client's shallow commits, from its haves either", async () => {
    const r = repository();
    const main = r.line(10, null, 0);
    // A side branch from c2, below the client's boundary at c5, merged after the client's tip c9.
    const side = r.line(1, main[2] as string, 20);
    const merge = r.commit("merge", [main[9] as string, side[0] as string], commitTime(30));
    const plan = await planFetch(r.source, {
      wants: [merge],
      haves: [main[9] as string],
      clientShallows: [main[5] as string],
    });
    // The client lacks c2 and what is below it: they come with the side branch.
    expect(plan.objects.map((o) => o.oid)).toEqual([merge, side[0], main[2], main[1], main[0]]);
  });
});

describe("reachableTargets (which wants by id the visible refs reach)", () => {
  it("finds a blob of the tip's tree after reading that tree, and a deeper one by walking on", async () => {
    const r = repository();
    const oldTree = r.tree({ "old.txt": "old\n" });
    const root = r.commit("root", [], commitTime(0), oldTree);
    const history = r.line(500, root, 1);
    const tipTree = r.tree({ dir: { "new.txt": "new\n" } });
    const tip = r.commit("tip", [history[499] as string], commitTime(600), tipTree);
    const newBlob = r.blob("new\n");
    let before = r.reads();
    expect(await reachableTargets(r.source, [tip], new Set([newBlob]))).toEqual(new Set([newBlob]));
    expect(r.reads() - before).toBeLessThan(10);

    const oldBlob = r.blob("old\n");
    expect(await reachableTargets(r.source, [r.tag(tip, "v1")], new Set([oldBlob, oldTree, root]))).toEqual(
      new Set([oldBlob, oldTree, root]),
    );
    // What no tip reaches is not found, after a walk of everything.
    const stray = r.blob("stray\n");
    before = r.reads();
    expect(await reachableTargets(r.source, [tip], new Set([stray, newBlob]))).toEqual(new Set([newBlob]));
    expect(r.reads() - before).toBeGreaterThan(500);
  });
});
