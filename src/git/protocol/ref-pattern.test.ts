import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors";
import { isValidRefName, refNameProblem, refsMatching } from "./ref-name";
import { matchRefPattern } from "./ref-pattern";
import { expandTokenActions, repoActionFor, verbForRepoAction } from "./repo-action";
import { fuzzParams } from "./test-support";

describe("refPattern glob", () => {
  it.each([
    ["refs/heads/*", "refs/heads/main", true],
    ["refs/heads/*", "refs/heads/a/b", false],
    ["refs/heads/*", "refs/tags/v1", false],
    ["refs/heads/**", "refs/heads/main", true],
    ["refs/heads/**", "refs/heads/a/b", true],
    ["**", "refs/tags/v1", true],
    ["**", "", true],
    ["refs/heads/main", "refs/heads/main", true],
    ["refs/heads/main", "refs/heads/main2", false],
    ["refs/heads/main", "xrefs/heads/main", false],
    ["refs/*/main", "refs/heads/main", true],
    ["refs/*/main", "refs/a/b/main", false],
    ["refs/**/main", "refs/a/b/main", true],
    ["refs/heads/**", "refs/heads/", true],
    ["refs/heads/feat-*", "refs/heads/feat-x", true],
    ["refs/heads/feat-*", "refs/heads/fix-x", false],
    ["refs/heads/a.b", "refs/heads/aXb", false],
    ["*", "refs", true],
    ["*", "refs/heads", false],
  ])("%s vs %s → %s", (pattern, ref, expected) => {
    expect(matchRefPattern(pattern, ref)).toBe(expected);
  });

  it("agrees with a regular-expression model and never backtracks badly", () => {
    const toRegex = (p: string) =>
      new RegExp(
        `^${p
          .split(/(\*\*+|\*)/)
          .map((part) =>
            part.startsWith("**") ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"),
          )
          .join("")}$`,
        "s",
      );
    const alphabet = fc.constantFrom("a", "b", "/", "*", ".");
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 12 }).map((c) => c.join("")),
        fc.array(fc.constantFrom("a", "b", "/", "."), { maxLength: 16 }).map((c) => c.join("")),
        (pattern, ref) => {
          expect(matchRefPattern(pattern, ref)).toBe(toRegex(pattern).test(ref));
        },
      ),
      fuzzParams("refPattern vs regex", 3000),
    );
    const evil = `${"**a".repeat(40)}b`;
    const started = Date.now();
    expect(matchRefPattern(evil, "a".repeat(1000))).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("ref names", () => {
  it.each(["refs/heads/main", "refs/heads/feature/x-1", "refs/tags/v1.0", "refs/heads/ünïcode"])(
    "accepts %s",
    (ref) => {
      expect(refNameProblem(ref)).toBeNull();
    },
  );

  it.each([
    "HEAD",
    "heads/main",
    "refs/heads/a..b",
    "refs/heads/a b",
    "refs/heads/a\tb",
    "refs/heads/a~1",
    "refs/heads/a^",
    "refs/heads/a:b",
    "refs/heads/a?",
    "refs/heads/a*",
    "refs/heads/a[b",
    "refs/heads/a\\b",
    "refs/heads/a@{1}",
    "refs/heads/x.lock",
    "refs/heads/x.lock/y",
    "refs/heads/.hidden",
    "refs/heads/",
    "refs/heads//x",
    "refs/heads/x.",
    `refs/heads/${"x".repeat(1100)}`,
  ])("refuses %j", (ref) => {
    expect(isValidRefName(ref)).toBe(false);
  });

  it("reads short names as git does: full names, then refs/, tags, heads, remotes", () => {
    const names = ["refs/heads/main", "refs/heads/v1", "refs/tags/v1", "refs/tags/v2", "refs/remotes/origin/HEAD"];
    expect(refsMatching("main", names)).toEqual(["refs/heads/main"]);
    expect(refsMatching("refs/tags/v2", names)).toEqual(["refs/tags/v2"]);
    expect(refsMatching("tags/v2", names)).toEqual(["refs/tags/v2"]);
    expect(refsMatching("v1", names)).toEqual(["refs/tags/v1", "refs/heads/v1"]);
    expect(refsMatching("origin", names)).toEqual(["refs/remotes/origin/HEAD"]);
    expect(refsMatching("nope", names)).toEqual([]);
  });
});

describe("HTTP → RepoAction", () => {
  it("maps the advertisement, upload-pack and receive-pack", () => {
    expect(repoActionFor("GET", "info/refs", "git-upload-pack")).toBe("resolveRef");
    expect(repoActionFor("GET", "info/refs", "git-receive-pack")).toBe("resolveRef");
    expect(repoActionFor("POST", "git-upload-pack", null)).toBe("createPack");
    expect(repoActionFor("POST", "git-receive-pack", null)).toBe("receivePack");
    expect(repoActionFor("GET", "git-upload-pack", null)).toBeNull();
    expect(repoActionFor("GET", "HEAD", null)).toBeNull();
  });

  it("refuses any other service on info/refs", () => {
    expect(() => repoActionFor("GET", "info/refs", "git-upload-archive")).toThrow(ProtocolError);
    expect(() => repoActionFor("GET", "info/refs", null)).toThrow(ProtocolError);
  });

  it("gives each action its grant verb", () => {
    expect(verbForRepoAction("init")).toBe("create");
    expect(verbForRepoAction("writeTree")).toBe("write");
    expect(verbForRepoAction("receivePack")).toBe("write");
    expect(verbForRepoAction("createPack")).toBe("read");
    expect(verbForRepoAction("resolveRef")).toBe("read");
  });

  it("expands mint aliases and rejects init and writeTree", () => {
    expect(expandTokenActions(["can_read"]).actions.sort()).toEqual(["createPack", "resolveRef"]);
    expect(expandTokenActions(["can_push", "resolveRef"])).toEqual({
      actions: ["receivePack", "resolveRef"],
      rejected: [],
    });
    expect(expandTokenActions(["init", "writeTree", "toString", "can_read"]).rejected).toEqual([
      "init",
      "writeTree",
      "toString",
    ]);
  });
});
