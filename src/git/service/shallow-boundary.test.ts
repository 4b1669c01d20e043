import { describe, expect, it } from "vitest";
import { planFetch } from "./reachability";
import { relativeBoundary, revListBoundary } from "./shallow-boundary";
import { commitTime, memoryRepository } from "./test-support";

const cut = (wants: string[], options: { since?: number; excludes?: string[]; clientShallows?: string[] } = {}) => ({
  wants,
  since: options.since ?? null,
  excludes: options.excludes ?? [],
  clientShallows: options.clientShallows ?? [],
});

describe("revListBoundary (deepen-since, deepen-not)", () => {
  it("deepen-since keeps the commits made at or after the time; the oldest kept is shallow", async () => {
    const r = memoryRepository();
    const c = r.line(10, null, 0);
    const tip = c[9] as string;
    expect(await revListBoundary(r.source, cut([tip], { since: commitTime(6) }))).toEqual({
      shallow: [c[6]],
      unshallow: [],
      parentsOfUnshallowed: [],
    });
    // Everything is newer than the date: no cut at all.
    expect(await revListBoundary(r.source, cut([tip], { since: commitTime(0) - 100 }))).toEqual({
      shallow: [],
      unshallow: [],
      parentsOfUnshallowed: [],
    });
    // Nothing is: git refuses the request.
    expect(await revListBoundary(r.source, cut([tip], { since: commitTime(50) }))).toBeNull();
  });

  it("deepen-not leaves out what the excluded ref reaches, on every side of a merge", async () => {
    const r = memoryRepository();
    const main = r.line(6, null, 0);
    // A side branch from c2, made at the time of c3, merged after c5.
    const s1 = r.commit("s1", [main[2] as string], commitTime(3));
    const s2 = r.commit("s2", [s1], commitTime(3));
    const merge = r.commit("merge", [main[5] as string, s2], commitTime(20));
    const boundary = await revListBoundary(r.source, cut([merge], { excludes: [r.tag(main[3] as string, "v3")] }));
    expect(new Set(boundary?.shallow)).toEqual(new Set([main[4], s1]));
    // With a date as well: the side branch is older than c4, so the merge is where it is cut.
    const both = await revListBoundary(r.source, cut([merge], { since: commitTime(4), excludes: [main[3] as string] }));
    expect(new Set(both?.shallow)).toEqual(new Set([main[4], merge]));
  });

  it("unshallows the client's shallow commits the new cut passes, and keeps the ones it stops at", async () => {
    const r = memoryRepository();
    const c = r.line(10, null, 0);
    const tip = c[9] as string;
    const deeper = await revListBoundary(
      r.source,
      cut([tip], { since: commitTime(3), clientShallows: [c[6] as string] }),
    );
    expect(deeper).toEqual({ shallow: [c[3]], unshallow: [c[6]], parentsOfUnshallowed: [c[5]] });
    const same = await revListBoundary(
      r.source,
      cut([tip], { since: commitTime(6), clientShallows: [c[6] as string] }),
    );
    expect(same).toEqual({ shallow: [], unshallow: [], parentsOfUnshallowed: [] });
  });

  it("stops walking once only excluded commits are left", async () => {
    const r = memoryRepository();
    const c = r.line(2_000, null, 0);
    const before = r.reads();
    await revListBoundary(r.source, cut([c[1_999] as string], { excludes: [c[1_990] as string] }));
    expect(r.reads() - before).toBeLessThan(30);
  });
});

describe("relativeBoundary (deepen <n> with deepen-relative)", () => {
  it("cuts n commits below the client's boundary, and the pack's walk brings exactly those", async () => {
    const r = memoryRepository();
    const c = r.line(10, null, 0);
    const boundary = await relativeBoundary(r.source, [c[7] as string], 2);
    expect(boundary).toEqual({ shallow: [c[5]], unshallow: [c[7]], parentsOfUnshallowed: [c[6]] });
    // The client has c7..c9 and asks for its tip again.
    const plan = await planFetch(r.source, {
      wants: [c[9] as string, ...boundary.parentsOfUnshallowed],
      haves: [c[9] as string],
      clientShallows: [c[7] as string, ...boundary.shallow],
    });
    expect(plan.objects.filter((o) => o.type === "commit").map((o) => o.oid)).toEqual([c[6], c[5]]);
  });

  it("stops at the root", async () => {
    const r = memoryRepository();
    const c = r.line(3, null, 0);
    expect(await relativeBoundary(r.source, [c[1] as string], 5)).toEqual({
      shallow: [],
      unshallow: [c[1]],
      parentsOfUnshallowed: [c[0]],
    });
  });
});
