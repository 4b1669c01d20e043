import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { indexKey, readIndexFile } from "./pack-files";

const MiB = 1024 * 1024;

/** Index-sized bytes (their content does not matter to the cache) stored under a pack of `repositoryId`. */
async function storedIndex(repositoryId: string, packId: string, bytes: number): Promise<Uint8Array> {
  const content = new Uint8Array(bytes).fill(packId.charCodeAt(0));
  await env.BLOBS.put(indexKey(repositoryId, packId), content);
  return content;
}

const removeFromR2 = (repositoryId: string, packId: string) => env.BLOBS.delete(indexKey(repositoryId, packId));

describe("index files kept by the isolate", () => {
  it("reads an index from R2 once and serves it from memory afterwards", async () => {
    const content = await storedIndex("idx-cache-once", "a", 1000);
    expect(await readIndexFile(env.BLOBS, "idx-cache-once", "a")).toEqual(content);
    await removeFromR2("idx-cache-once", "a");
    expect(await readIndexFile(env.BLOBS, "idx-cache-once", "a")).toEqual(content);
  });

  it("shares one read between concurrent requests for the same index", async () => {
    await storedIndex("idx-cache-shared", "a", 1000);
    const [first, second] = await Promise.all([
      readIndexFile(env.BLOBS, "idx-cache-shared", "a"),
      readIndexFile(env.BLOBS, "idx-cache-shared", "a"),
    ]);
    expect(second).toBe(first);
  });

  it("lets the least recently read indexes go once they pass 24 MiB, whatever their count", async () => {
    const repo = "idx-cache-bound";
    for (const id of ["a", "b", "c"]) await storedIndex(repo, id, 8 * MiB);
    await readIndexFile(env.BLOBS, repo, "a");
    await readIndexFile(env.BLOBS, repo, "b");
    await readIndexFile(env.BLOBS, repo, "a"); // "b" is now the least recently read
    await readIndexFile(env.BLOBS, repo, "c");
    for (const id of ["a", "b", "c"]) await removeFromR2(repo, id);

    // Three 8 MiB indexes and their offsets (9/7 of that) do not fit in 24 MiB: "b" went.
    expect((await readIndexFile(env.BLOBS, repo, "a")).byteLength).toBe(8 * MiB);
    expect((await readIndexFile(env.BLOBS, repo, "c")).byteLength).toBe(8 * MiB);
    await expect(readIndexFile(env.BLOBS, repo, "b")).rejects.toThrow(`missing index ${indexKey(repo, "b")}`);
  });

  it("does not keep an index larger than the whole budget", async () => {
    const repo = "idx-cache-huge";
    await storedIndex(repo, "a", 20 * MiB);
    expect((await readIndexFile(env.BLOBS, repo, "a")).byteLength).toBe(20 * MiB);
    await removeFromR2(repo, "a");
    await expect(readIndexFile(env.BLOBS, repo, "a")).rejects.toThrow("missing index");
  });

  it("does not keep a failed read: the index is read again once it exists", async () => {
    const repo = "idx-cache-retry";
    await expect(readIndexFile(env.BLOBS, repo, "a")).rejects.toThrow("missing index");
    const content = await storedIndex(repo, "a", 100);
    expect(await readIndexFile(env.BLOBS, repo, "a")).toEqual(content);
  });
});
