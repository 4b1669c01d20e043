/**
 * Packs on the instance channel (docs/sidecar-protocol.md §3.2): cutting a pack into `repo.pack.push`
 * chunks, putting the hub's chunks back together (refusing gaps, miscounts and a second transfer at once),
 * indexing a pack into an object store, building the pack of a branch, and checking an asset's tree out.
 */
import fs from "node:fs";
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import git from "isomorphic-git";
import { PACK_CHUNK_BYTES, type PackRejectReason } from "../src/runtime/protocol";

/** The largest pack either side accepts. */
export const MAX_PACK_BYTES = 64 * 1024 * 1024;

const SHA = /^[0-9a-f]{40}$/;

export type PackFailure = { reason: PackRejectReason; message: string };

export function isFailure(value: unknown): value is PackFailure {
  return typeof value === "object" && value !== null && "reason" in value;
}

/** The pack as `repo.pack.push` data: base64 of at most `chunkBytes` raw bytes each. */
export function splitPack(pack: Uint8Array, chunkBytes = PACK_CHUNK_BYTES): string[] {
  const chunks: string[] = [];
  for (let offset = 0; offset < pack.length; offset += chunkBytes) {
    chunks.push(Buffer.from(pack.subarray(offset, offset + chunkBytes)).toString("base64"));
  }
  return chunks;
}

type Incoming = { transferId: string; chunks: Buffer[]; size: number; failure: PackFailure | null };

/**
 * Collects the chunks of packs the hub sends, one transfer at a time. A problem found on a chunk is kept
 * until the transfer's `done`, which is where the receiver answers.
 */
export class PackReceiver {
  private current: Incoming | null = null;
  /** Transfers refused as `conflict` because they started while another was in progress. */
  private readonly refused = new Map<string, PackFailure>();

  push(frame: { transferId: unknown; seq: unknown; data: unknown }): void {
    const transferId = String(frame.transferId);
    if (this.current && this.current.transferId !== transferId) {
      this.refused.set(transferId, {
        reason: "conflict",
        message: `transfer ${this.current.transferId} is still in progress`,
      });
      return;
    }
    if (this.refused.has(transferId)) return;
    this.current ??= { transferId, chunks: [], size: 0, failure: null };
    const incoming = this.current;
    if (incoming.failure) return;
    if (frame.seq !== incoming.chunks.length) {
      incoming.failure = {
        reason: "corrupt",
        message: `chunk ${String(frame.seq)} came where ${incoming.chunks.length} was due`,
      };
      return;
    }
    const data = typeof frame.data === "string" ? Buffer.from(frame.data, "base64") : Buffer.alloc(0);
    if (data.length === 0 || data.length > PACK_CHUNK_BYTES) {
      incoming.failure = { reason: "corrupt", message: `chunk ${incoming.chunks.length} is empty or too large` };
      return;
    }
    incoming.size += data.length;
    if (incoming.size > MAX_PACK_BYTES) {
      incoming.failure = { reason: "too_large", message: `the pack is over ${MAX_PACK_BYTES} bytes` };
      incoming.chunks = [];
      return;
    }
    incoming.chunks.push(data);
  }

  /** The whole pack, or why it is refused. */
  done(frame: { transferId: unknown; chunks: unknown }): Buffer | PackFailure {
    const transferId = String(frame.transferId);
    const conflict = this.refused.get(transferId);
    if (conflict) {
      this.refused.delete(transferId);
      return conflict;
    }
    const incoming = this.current?.transferId === transferId ? this.current : null;
    if (incoming) this.current = null;
    if (incoming?.failure) return incoming.failure;
    const received = incoming?.chunks.length ?? 0;
    if (frame.chunks !== received || received === 0) {
      return { reason: "corrupt", message: `done counts ${String(frame.chunks)} chunks, ${received} arrived` };
    }
    return Buffer.concat(incoming?.chunks ?? []);
  }

  /** Forgets a transfer cut by a lost channel: the hub starts it again from seq 0. */
  reset(): void {
    this.current = null;
    this.refused.clear();
  }
}

/**
 * Indexes `pack` into the object store at `gitdir` (as `objects/pack/pack-<checksum>.pack` + `.idx`) and
 * checks that `commitSha` is a commit in it. A refused pack leaves nothing behind.
 */
export async function indexPack(
  gitdir: string,
  pack: Buffer,
  commitSha: string,
  cache: object = {},
): Promise<PackFailure | null> {
  if (!SHA.test(commitSha)) return { reason: "sha_mismatch", message: "commitSha is not a SHA-1" };
  if (pack.length < 32 || pack.toString("latin1", 0, 4) !== "PACK" || pack.readUInt32BE(4) !== 2) {
    return { reason: "corrupt", message: "not a version 2 pack" };
  }
  const name = `pack-${pack.subarray(pack.length - 20).toString("hex")}`;
  const directory = join(gitdir, "objects", "pack");
  await mkdir(directory, { recursive: true });
  const discard = () =>
    Promise.all([
      rm(join(directory, `${name}.pack`), { force: true }),
      rm(join(directory, `${name}.idx`), { force: true }),
    ]);
  await writeFile(join(directory, `${name}.pack`), pack);
  let oids: string[];
  try {
    ({ oids } = await git.indexPack({ fs, dir: gitdir, gitdir, filepath: `objects/pack/${name}.pack`, cache }));
  } catch (error) {
    await discard();
    return { reason: "corrupt", message: `the pack does not index: ${(error as Error).message}` };
  }
  if (!oids.includes(commitSha)) {
    await discard();
    return { reason: "sha_mismatch", message: `${commitSha} is not in the pack` };
  }
  try {
    await git.readCommit({ fs, gitdir, oid: commitSha, cache });
  } catch {
    await discard();
    return { reason: "sha_mismatch", message: `${commitSha} is not a commit` };
  }
  return null;
}

/** Every commit, tree and blob reachable from `tip` (gitlinks excepted: their commits live elsewhere). */
export async function reachableObjects(gitdir: string, tip: string, cache: object = {}): Promise<string[]> {
  const seen = new Set<string>();
  const commits = [tip];
  const trees: string[] = [];
  while (commits.length > 0) {
    const oid = commits.pop() as string;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const { commit } = await git.readCommit({ fs, gitdir, oid, cache });
    trees.push(commit.tree);
    commits.push(...commit.parent);
  }
  while (trees.length > 0) {
    const oid = trees.pop() as string;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const { tree } = await git.readTree({ fs, gitdir, oid, cache });
    for (const entry of tree) {
      if (entry.type === "tree") trees.push(entry.oid);
      else if (entry.type === "blob") seen.add(entry.oid);
    }
  }
  return [...seen];
}

/** A pack of everything reachable from `tip`, as the hub's `git index-pack` reads it. */
export async function buildPack(gitdir: string, tip: string, cache: object = {}): Promise<Uint8Array> {
  const oids = await reachableObjects(gitdir, tip, cache);
  const { packfile } = await git.packObjects({ fs, gitdir, oids, cache });
  if (!packfile) throw new Error("packObjects returned no pack");
  return packfile;
}

/** `mountPath` inside `workspace`, or null when it would leave it (or name the workspace itself). */
export function mountDirectory(workspace: string, mountPath: string): string | null {
  if (typeof mountPath !== "string" || mountPath === "" || isAbsolute(mountPath) || mountPath.includes("\0"))
    return null;
  const target = resolve(workspace, mountPath);
  const inside = relative(workspace, target);
  if (inside === "" || inside.startsWith("..") || isAbsolute(inside) || inside.split(sep).includes("..")) return null;
  return target;
}

/**
 * Replaces `target` with the tree of commit `commitSha`. Symlinks and submodules are skipped: an asset
 * must not point the agent outside its workspace.
 */
export async function checkoutTree(
  gitdir: string,
  commitSha: string,
  target: string,
  cache: object = {},
): Promise<void> {
  const { commit } = await git.readCommit({ fs, gitdir, oid: commitSha, cache });
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  const write = async (treeOid: string, directory: string): Promise<void> => {
    const { tree } = await git.readTree({ fs, gitdir, oid: treeOid, cache });
    for (const entry of tree) {
      // Git itself refuses such names; a hand-made pack might not.
      if (entry.path === "." || entry.path === ".." || entry.path === ".git" || /[/\\\0]/.test(entry.path)) continue;
      const path = join(directory, entry.path);
      if (entry.type === "tree") {
        await mkdir(path, { recursive: true });
        await write(entry.oid, path);
      } else if (entry.type === "blob" && entry.mode !== "120000") {
        const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
        await writeFile(path, blob);
        if (entry.mode === "100755") await chmod(path, 0o755);
      }
    }
  };
  await write(commit.tree, target);
}
