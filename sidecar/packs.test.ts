/**
 * Packs, checked against the real git: the receiver refuses gaps, miscounts and a second transfer; a pack
 * git wrote (with deltas) indexes into the sidecar's store; the pack the sidecar builds indexes in git.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PACK_CHUNK_BYTES } from "../src/runtime/protocol";
import { buildPack, checkoutTree, indexPack, isFailure, mountDirectory, PackReceiver, splitPack } from "./packs";
import { StateRepo } from "./state-repo";
import { bareWithPack, commitTree, gitRun, packOf } from "./support/git";

const temps: string[] = [];
const temp = async () => {
  const dir = await mkdtemp(join(tmpdir(), "sidecar-packs-"));
  temps.push(dir);
  return dir;
};
afterEach(async () => {
  for (const dir of temps.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function newRepo(): Promise<StateRepo> {
  const repo = new StateRepo(await temp(), () => ({ name: "agent", email: "ins_x@acme.agent-hub.local" }));
  await repo.open();
  return repo;
}

describe("splitPack and PackReceiver", () => {
  const bytes = Buffer.alloc(PACK_CHUNK_BYTES * 2 + 10, 7);

  it("cuts at PACK_CHUNK_BYTES and puts the chunks back together", () => {
    const chunks = splitPack(bytes);
    expect(chunks.map((c) => Buffer.from(c, "base64").length)).toEqual([PACK_CHUNK_BYTES, PACK_CHUNK_BYTES, 10]);
    const receiver = new PackReceiver();
    chunks.forEach((data, seq) => {
      receiver.push({ transferId: "t1", seq, data });
    });
    expect(receiver.done({ transferId: "t1", chunks: 3 })).toEqual(bytes);
  });

  it("refuses a gap, a wrong count and a transfer that starts while another is open", () => {
    const [a, b, c] = splitPack(bytes);
    const receiver = new PackReceiver();
    receiver.push({ transferId: "gap", seq: 0, data: a });
    receiver.push({ transferId: "gap", seq: 2, data: c });
    expect(receiver.done({ transferId: "gap", chunks: 3 })).toMatchObject({ reason: "corrupt" });

    receiver.push({ transferId: "count", seq: 0, data: a });
    receiver.push({ transferId: "count", seq: 1, data: b });
    expect(receiver.done({ transferId: "count", chunks: 3 })).toMatchObject({ reason: "corrupt" });
    expect(receiver.done({ transferId: "never", chunks: 0 })).toMatchObject({ reason: "corrupt" });

    receiver.push({ transferId: "first", seq: 0, data: a });
    receiver.push({ transferId: "second", seq: 0, data: a });
    expect(receiver.done({ transferId: "second", chunks: 1 })).toMatchObject({ reason: "conflict" });
    expect(receiver.done({ transferId: "first", chunks: 1 })).toEqual(Buffer.from(String(a), "base64"));
  });
});

describe("indexPack", () => {
  it("indexes git's own pack (with deltas) and finds the commit; refuses a missing commit and garbage", async () => {
    const big = "line of a skill\n".repeat(400);
    const { dir, sha } = await commitTree({ "a.md": big, "b.md": `${big}one more\n`, "sub/c.txt": "c" });
    temps.push(dir);
    const pack = packOf(dir, sha);
    const repo = await newRepo();
    expect(await indexPack(repo.gitdir, pack, "1".repeat(40))).toMatchObject({ reason: "sha_mismatch" });
    expect(await readdir(join(repo.gitdir, "objects", "pack"))).toEqual([]);
    expect(await indexPack(repo.gitdir, Buffer.from("PACK but not really a pack at all, sorry"), sha)).toMatchObject({
      reason: "corrupt",
    });
    const truncated = Buffer.from(pack.subarray(0, pack.length - 30));
    expect(isFailure(await indexPack(repo.gitdir, truncated, sha))).toBe(true);
    expect(await indexPack(repo.gitdir, pack, sha)).toBeNull();

    const target = join(await temp(), "skills", "demo");
    await checkoutTree(repo.gitdir, sha, target);
    expect(await readFile(join(target, "b.md"), "utf8")).toBe(`${big}one more\n`);
    expect(await readFile(join(target, "sub", "c.txt"), "utf8")).toBe("c");
    expect((await stat(join(target, "a.md"))).isFile()).toBe(true);
  });

  it("keeps mount paths inside the workspace", () => {
    expect(mountDirectory("/w", "skills/demo/")).toBe("/w/skills/demo");
    expect(mountDirectory("/w", "../x/")).toBeNull();
    expect(mountDirectory("/w", "skills/../../x")).toBeNull();
    expect(mountDirectory("/w", "/etc/")).toBeNull();
    expect(mountDirectory("/w", "./")).toBeNull();
  });
});

describe("buildPack", () => {
  it("builds a pack of the whole branch that git indexes, with a clean fsck", async () => {
    const repo = await newRepo();
    const metadata = {
      pendingOperations: [],
      tokenUsage: { input: 1, output: 2, cacheRead: 0, cacheWrite: 0, thinking: 0 },
      connectorState: null,
    };
    const turn = { role: "user" as const, content: [{ type: "text" as const, text: "hi" }], timestamp: 1 };
    await repo.writeCheckpoint("inference-done", { turns: [turn], metadata });
    await repo.writeCheckpoint("tool-done", {
      turns: [turn, turn],
      metadata,
      toolOutputs: [{ callId: "call_1", content: { ok: true }, isError: false }],
    });
    const tip = (await repo.head()) as string;
    const pack = Buffer.from(await buildPack(repo.gitdir, tip));
    const bare = await bareWithPack(pack, "refs/heads/main", tip);
    temps.push(bare);
    gitRun(bare, ["fsck", "--strict", "--no-dangling"]);
    expect(gitRun(bare, ["log", "--format=%s", "main"]).trim().split("\n")).toEqual([
      "checkpoint: tool-done",
      "checkpoint: inference-done",
    ]);
    expect(gitRun(bare, ["show", "main:tool-output/call_1.json"])).toContain('"ok": true');
    expect(existsSync(bare)).toBe(true);
  });
});
