import { describe, expect, it } from "vitest";
import { grantSpecificity, matchPattern, specificity } from "./pattern";

describe("matchPattern", () => {
  it("treats a pattern without stars as plain equality", () => {
    expect(matchPattern("agent:agt_1", "agent:agt_1")).toBe(true);
    expect(matchPattern("agent:agt_1", "agent:agt_12")).toBe(false);
    expect(matchPattern("agent:agt_1", "agent:agt_")).toBe(false);
    expect(matchPattern("read", "READ")).toBe(false);
    expect(matchPattern("", "")).toBe(true);
    expect(matchPattern("", "a")).toBe(false);
  });

  it("lets a lone star match anything, the empty string included", () => {
    for (const target of ["", "a", "agent:x:y", "*", "ünïcode 🚀"]) expect(matchPattern("*", target)).toBe(true);
  });

  it("anchors both ends", () => {
    expect(matchPattern("agent:*", "agent:agt_1")).toBe(true);
    expect(matchPattern("agent:*", "xagent:agt_1")).toBe(false);
    expect(matchPattern("*:read", "agent:read")).toBe(true);
    expect(matchPattern("*:read", "agent:reader")).toBe(false);
    expect(matchPattern("a*c", "abcd")).toBe(false);
    expect(matchPattern("a*c", "dabc")).toBe(false);
  });

  it("lets a star cross ':' and match an empty run", () => {
    expect(matchPattern("agent:*", "agent:x:y")).toBe(true);
    expect(matchPattern("agent:*", "agent:")).toBe(true);
    expect(matchPattern("agent*", "agent")).toBe(true);
    expect(matchPattern("*agent", "agent")).toBe(true);
    expect(matchPattern("a*:*b", "a:b")).toBe(true);
    expect(matchPattern("agent:*", "agent")).toBe(false);
  });

  it("handles several stars, backtracking over repeated pieces", () => {
    expect(matchPattern("*:*", "agent:x")).toBe(true);
    expect(matchPattern("*:*", "agent")).toBe(false);
    expect(matchPattern("a*b*c", "aXbYc")).toBe(true);
    expect(matchPattern("a*b*c", "abc")).toBe(true);
    expect(matchPattern("a*b*c", "acb")).toBe(false);
    expect(matchPattern("*ab*ab*", "xabyab")).toBe(true);
    expect(matchPattern("*aab", "aaaab")).toBe(true);
    expect(matchPattern("*aab", "aaaba")).toBe(false);
    expect(matchPattern("a*ab*b", "aabab")).toBe(true);
    expect(matchPattern("a*aab", "aaab")).toBe(true);
  });

  it("does not let the literal prefix and suffix overlap on the same characters", () => {
    // Checking the first piece at 0 and the last with endsWith, separately, would wrongly accept these.
    expect(matchPattern("a*ab", "ab")).toBe(false);
    expect(matchPattern("ab*b", "ab")).toBe(false);
    expect(matchPattern("agent:*agent:", "agent:")).toBe(false);
    expect(matchPattern("a*ab", "aab")).toBe(true);
  });

  it("treats ** like * and every other character literally", () => {
    expect(matchPattern("**", "")).toBe(true);
    expect(matchPattern("**", "x:y")).toBe(true);
    expect(matchPattern("agent:**", "agent:a:b")).toBe(true);
    expect(matchPattern("a**b", "ab")).toBe(true);
    expect(matchPattern("a?c", "abc")).toBe(false);
    expect(matchPattern("a?c", "a?c")).toBe(true);
    expect(matchPattern("a.c", "abc")).toBe(false);
    expect(matchPattern("[ab]*", "a")).toBe(false);
    expect(matchPattern("^a$*", "^a$x")).toBe(true);
  });

  it("requires the literal prefix before the first star to fit", () => {
    expect(matchPattern("instance:*", "inst")).toBe(false);
    expect(matchPattern("instance:ins_*", "instance:ins_")).toBe(true);
  });
});

describe("specificity", () => {
  it("scores a lone star 0 and other wildcards by their literal characters", () => {
    expect(specificity("*")).toBe(0);
    expect(specificity("**")).toBe(0);
    expect(specificity("agent:*")).toBe(6);
    expect(specificity("*:*")).toBe(1);
  });

  it("adds 1000 for an exact pattern", () => {
    expect(specificity("read")).toBe(1004);
    expect(specificity("agent:agt_1")).toBe(1011);
    expect(specificity("")).toBe(1000);
  });

  it("ranks any exact pattern above any wildcard", () => {
    expect(specificity("a")).toBeGreaterThan(specificity(`${"x".repeat(900)}*`));
  });

  it("sums resource and action for a grant", () => {
    expect(grantSpecificity("*", "*")).toBe(0);
    expect(grantSpecificity("agent:*", "read")).toBe(1010);
    expect(grantSpecificity("instance:ins_1", "*")).toBe(1014);
  });
});
