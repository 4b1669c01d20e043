import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors";
import { parseFilterSpec } from "./filter-spec";

describe("filter specs", () => {
  it("reads blob:none, blob:limit with git's suffixes, and tree:<depth>", () => {
    expect(parseFilterSpec("blob:none")).toEqual({ kind: "blob:none" });
    expect(parseFilterSpec("blob:limit=0")).toEqual({ kind: "blob:limit", bytes: 0 });
    expect(parseFilterSpec("blob:limit=1024")).toEqual({ kind: "blob:limit", bytes: 1024 });
    expect(parseFilterSpec("blob:limit=1k")).toEqual({ kind: "blob:limit", bytes: 1024 });
    expect(parseFilterSpec("blob:limit=2M")).toEqual({ kind: "blob:limit", bytes: 2 * 1024 * 1024 });
    expect(parseFilterSpec("blob:limit=1g")).toEqual({ kind: "blob:limit", bytes: 1024 ** 3 });
    expect(parseFilterSpec("tree:0")).toEqual({ kind: "tree", depth: 0 });
    expect(parseFilterSpec("tree:3")).toEqual({ kind: "tree", depth: 3 });
  });

  it.each([
    "sparse:oid=0123456789012345678901234567890123456789",
    "object:type=blob",
    "combine:blob:none+tree:0",
    "blob:limit=",
    "blob:limit=1x",
    "blob:limit=-1",
    "tree:",
    "tree:-1",
    "blob:None",
    "",
  ])("refuses %j, naming what is served", (spec) => {
    const err = (() => {
      try {
        parseFilterSpec(spec);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("unsupported");
    expect((err as ProtocolError).message).toBe(
      `filter '${spec}' is not supported; use blob:none, blob:limit=<n> or tree:<depth>`,
    );
  });

  it("shortens a long spec in the message", () => {
    expect(() => parseFilterSpec(`sparse:oid=${"a".repeat(200)}`)).toThrow(/^filter 'sparse:oid=a{53}…' is not/);
  });
});
