import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { indexPack } from "../pack/reader";
import { fixtures } from "../pack/test-support";
import { GitFormatError } from "./errors";
import {
  type Commit,
  hashObject,
  objectTypeFromCode,
  PackObjectCode,
  parseCommit,
  parseTag,
  parseTree,
  serializeCommit,
  serializeTag,
  serializeTree,
  type TreeEntry,
} from "./object";

const text = (value: string) => new TextEncoder().encode(value);
const TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"; // the empty tree
const BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"; // the empty blob

describe("hashObject", () => {
  it("matches git hash-object", () => {
    expect(hashObject("blob", new Uint8Array(0))).toBe(BLOB);
    expect(hashObject("blob", text("hello\n"))).toBe("ce013625030ba8dba906f756967f9e9ca394464a");
    expect(hashObject("tree", new Uint8Array(0))).toBe(TREE);
  });

  it('hashes small and large bodies of every type as sha1("<type> <len>\\0" + body)', () => {
    for (const type of ["blob", "tree", "commit", "tag"] as const) {
      for (const length of [1, 4095, 4096, 4097, 100_000]) {
        const body = Uint8Array.from({ length }, (_, i) => (i * 31 + length) & 255);
        const expected = createHash("sha1").update(`${type} ${length}\0`).update(body).digest("hex");
        expect(hashObject(type, body)).toBe(expected);
      }
    }
  });

  it("maps pack type codes both ways", () => {
    for (const [type, code] of Object.entries(PackObjectCode)) expect(objectTypeFromCode(code)).toBe(type);
    expect(objectTypeFromCode(5)).toBeUndefined();
    expect(objectTypeFromCode(6)).toBeUndefined();
  });
});

describe("objects of a real repository", () => {
  it("parses every commit, tree and tag of git's pack and re-serializes it byte for byte", async () => {
    const counts = { commit: 0, tree: 0, tag: 0 };
    await indexPack(fixtures.repoPack(), {
      onObject: ({ type, body }) => {
        if (type === "commit") expect(serializeCommit(parseCommit(body))).toEqual(body);
        if (type === "tree") expect(serializeTree(parseTree(body))).toEqual(body);
        if (type === "tag") expect(serializeTag(parseTag(body))).toEqual(body);
        if (type !== "blob") counts[type]++;
      },
    });
    expect(counts).toEqual({ commit: 8, tree: 31, tag: 1 }); // as `git verify-pack -v` lists them
  });

  it("reads commit fields, including timezones and the message", async () => {
    const commits: Commit[] = [];
    await indexPack(fixtures.repoPack(), {
      onObject: ({ type, body }) => void (type === "commit" && commits.push(parseCommit(body))),
    });
    const root = commits.find((c) => c.parents.length === 0);
    expect(root).toMatchObject({
      author: { name: "Ada Lovelace", email: "ada@example.com", timestamp: 1700003600, timezone: "+0100" },
      committer: { name: "Charles Babbage", email: "charles@example.com", timestamp: 1700003660, timezone: "-0230" },
      extraHeaders: [],
      message: "initial import\n",
    });
  });
});

describe("commits", () => {
  const signed = [
    `tree ${TREE}`,
    `parent ${BLOB}`,
    `parent ${TREE}`,
    "author A U Thor <author@example.com> 1112911993 -0700",
    "committer C O Mitter <committer@example.com> 1112912053 +0000",
    "encoding ISO-8859-1",
    "gpgsig -----BEGIN PGP SIGNATURE-----",
    " ",
    " iQEzBAABCAAdFiEE",
    " -----END PGP SIGNATURE-----",
    "",
    "Merge two things\n\nWith a body.\n",
  ].join("\n");

  it("keeps extra headers such as gpgsig (multi-line) and round-trips", () => {
    const commit = parseCommit(text(signed));
    expect(commit.parents).toEqual([BLOB, TREE]);
    expect(commit.extraHeaders).toEqual([
      { name: "encoding", value: "ISO-8859-1" },
      { name: "gpgsig", value: "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n-----END PGP SIGNATURE-----" },
    ]);
    expect(commit.message).toBe("Merge two things\n\nWith a body.\n");
    expect(new TextDecoder().decode(serializeCommit(commit))).toBe(signed);
  });

  it("rejects malformed commits with GitFormatError", () => {
    const good = `tree ${TREE}\nauthor A <a@b> 1 +0000\ncommitter C <c@d> 2 +0000\n\nmsg\n`;
    expect(parseCommit(text(good)).message).toBe("msg\n");
    const bad = [
      "",
      "\nmsg",
      good.replace("tree ", "tree  "),
      good.replace(TREE, TREE.toUpperCase()),
      good.replace("author", "parent"),
      good.replace("author A <a@b> 1 +0000\n", ""),
      good.replace("<a@b>", "a@b"),
      good.replace(" 1 +0000", " +0000"),
      good.replace(" 1 +0000", " 1 0000"),
      good.replace(" 1 +0000", " x +0000"),
      `tree ${TREE}\nauthor A <a@b> 1 +0000\ncommitter C <c@d> 2 +0000`,
      ` continuation\n${good}`,
    ];
    for (const body of bad) expect(() => parseCommit(text(body)), body).toThrow(GitFormatError);
  });

  it("refuses to serialize invalid fields", () => {
    const commit = parseCommit(text(signed));
    expect(() => serializeCommit({ ...commit, tree: "nope" })).toThrow(GitFormatError);
    expect(() => serializeCommit({ ...commit, author: { ...commit.author, email: "a>b" } })).toThrow(GitFormatError);
    expect(() => serializeCommit({ ...commit, author: { ...commit.author, timezone: "0100" } })).toThrow(
      GitFormatError,
    );
    expect(() => serializeCommit({ ...commit, extraHeaders: [{ name: "bad name", value: "x" }] })).toThrow(
      GitFormatError,
    );
  });
});

describe("tags", () => {
  it("parses annotated tags with and without a tagger", () => {
    const body = `object ${BLOB}\ntype blob\ntag v1\ntagger T <t@x> 5 +0100\n\nrelease\n`;
    const tag = parseTag(text(body));
    expect(tag).toEqual({
      object: BLOB,
      type: "blob",
      tag: "v1",
      tagger: { name: "T", email: "t@x", timestamp: 5, timezone: "+0100" },
      extraHeaders: [],
      message: "release\n",
    });
    expect(serializeTag(tag)).toEqual(text(body));
    const old = parseTag(text(`object ${BLOB}\ntype blob\ntag v0\n\nold\n`));
    expect(old.tagger).toBeUndefined();
  });

  it("rejects malformed tags", () => {
    for (const body of [
      `object ${BLOB}\ntype spoon\ntag v1\n\n`,
      `type blob\nobject ${BLOB}\ntag v1\n\n`,
      `object ${BLOB}\ntype blob\ntag \n\n`,
      `object ${BLOB}\ntype blob\n\n`,
    ]) {
      expect(() => parseTag(text(body)), body).toThrow(GitFormatError);
    }
  });
});

describe("trees", () => {
  const entry = (mode: TreeEntry["mode"], name: string, oid = BLOB): TreeEntry => ({ mode, name, oid });

  it("sorts entries as git does: a tree sorts as if its name ended with '/'", () => {
    const entries = [entry("100644", "a0"), entry("40000", "a", TREE), entry("100644", "a.b"), entry("100755", "Z")];
    const parsed = parseTree(serializeTree(entries));
    expect(parsed.map((e) => e.name)).toEqual(["Z", "a.b", "a", "a0"]);
    // A blob named "a" sorts before "a.b" (end of name < '.').
    expect(parseTree(serializeTree([entry("100644", "a.b"), entry("100644", "a")])).map((e) => e.name)).toEqual([
      "a",
      "a.b",
    ]);
  });

  it("matches the oid git computes for a known tree", () => {
    // printf x > x && git add x && git write-tree
    const tree = serializeTree([entry("100644", "x", "c1b0730e0133447badcfd47fd144e254807b06e1")]);
    expect(hashObject("tree", tree)).toBe("f115c6d5cfb15ca1a72429900dcaca0fd1057951");
  });

  it("validates modes, names, order and duplicates", () => {
    expect(() => serializeTree([entry("100664", "x")])).toThrow(/mode/);
    expect(parseTree(serializeTree([entry("100644", "x")]).map((b) => b))).toHaveLength(1);
    const legacy = text(`100664 x\0`);
    expect(parseTree(Uint8Array.from([...legacy, ...new Uint8Array(20)]))[0]?.mode).toBe("100664");
    for (const name of ["", ".", "..", ".git", ".GIT", "a/b"]) {
      expect(() => serializeTree([entry("100644", name)]), name).toThrow(GitFormatError);
    }
    expect(() => serializeTree([entry("100644", "x"), entry("100755", "x")])).toThrow(/duplicate/);
    expect(() => serializeTree([entry("100644", "x"), entry("40000", "x", TREE)])).toThrow(/duplicate/);
    const b = serializeTree([entry("100644", "b")]);
    const a = serializeTree([entry("100644", "a")]);
    expect(() => parseTree(Uint8Array.from([...b, ...a]))).toThrow(/sorted/);
    expect(() => parseTree(Uint8Array.from([...a, ...a]))).toThrow(GitFormatError);
    expect(() => parseTree(text("100644 x\0short"))).toThrow(/truncated/);
    expect(() => parseTree(text("644 x\0"))).toThrow(/mode/);
    expect(() => parseTree(text("100644"))).toThrow(/truncated/);
  });
});
