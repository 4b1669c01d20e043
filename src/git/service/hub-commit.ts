/**
 * Commits the hub makes itself (a launch's deploy tree, a restore): a signed commit on one ref, stored as
 * a small pack and published under the push lease like any push, so it never races one.
 */
import type { Db } from "../../db/client";
import { ApiError } from "../../errors";
import type { HubSigningKey } from "../../secrets/hub-signing-key";
import { hashObject, type ObjectType, parseCommit, serializeTree, type TreeEntry } from "../objects/object";
import { ZERO_OID } from "../objects/oid";
import { putPackFiles } from "../storage/pack-files";
import {
  acquirePushLease,
  ensureRepository,
  publishPush,
  releasePushLease,
  requestSweep,
} from "../storage/repositories";
import { buildSmallPack, HUB_IDENTITY, serializeSignedCommit } from "./genesis";
import { openRepository } from "./repository";

type NewObject = { type: ObjectType; body: Uint8Array };

/** The trees of a set of files (`a/b.txt` → bytes); returns the root tree's id and every object. */
export function treeOfFiles(files: ReadonlyMap<string, Uint8Array>): { root: string; objects: NewObject[] } {
  type Dir = { files: Map<string, Uint8Array>; dirs: Map<string, Dir> };
  const top: Dir = { files: new Map(), dirs: new Map() };
  for (const [path, bytes] of files) {
    const parts = path.split("/");
    let dir = top;
    for (const part of parts.slice(0, -1)) {
      let next = dir.dirs.get(part);
      if (!next) {
        next = { files: new Map(), dirs: new Map() };
        dir.dirs.set(part, next);
      }
      dir = next;
    }
    dir.files.set(parts[parts.length - 1] as string, bytes);
  }
  const objects: NewObject[] = [];
  const write = (dir: Dir): string => {
    const entries: TreeEntry[] = [];
    for (const [name, bytes] of dir.files) {
      objects.push({ type: "blob", body: bytes });
      entries.push({ mode: "100644", name, oid: hashObject("blob", bytes) });
    }
    for (const [name, sub] of dir.dirs) entries.push({ mode: "40000", name, oid: write(sub) });
    const body = serializeTree(entries);
    objects.push({ type: "tree", body });
    return hashObject("tree", body);
  };
  return { root: write(top), objects };
}

export type HubCommitInput = {
  repositoryId: string;
  tenantId: string;
  /** The repository's HEAD when this commit creates it. */
  head?: string;
  ref: string;
  message: string;
  key: HubSigningKey;
  /** New files (the whole tree), or a tree the repository already holds. */
  content: { files: ReadonlyMap<string, Uint8Array> } | { tree: string };
  /** When the ref already points at a commit with this tree, leave it (no empty commits). */
  skipWhenUnchanged?: boolean;
  now?: Date;
};

/** Commits onto `ref` (its parent is the ref's current commit); returns the commit the ref now names. */
export async function commitOnRef(
  db: Db,
  bucket: R2Bucket,
  input: HubCommitInput,
): Promise<{ commitOid: string; changed: boolean }> {
  await ensureRepository(db, input.repositoryId, input.tenantId, input.head);
  const lease = await acquirePushLease(db, input.repositoryId);
  if (!lease) throw new ApiError(409, "repository_busy", "Another write to this repository is in progress; retry");
  try {
    const { refs, store } = await openRepository(db, bucket, input.repositoryId);
    const current = refs.find((r) => r.name === input.ref)?.oid ?? null;
    const built = "files" in input.content ? treeOfFiles(input.content.files) : null;
    const tree = built ? built.root : (input.content as { tree: string }).tree;
    if (current && input.skipWhenUnchanged) {
      const parent = await store.read(current);
      if (parent?.type === "commit" && parseCommit(parent.body).tree === tree) {
        return { commitOid: current, changed: false };
      }
    }
    const when = {
      ...HUB_IDENTITY,
      timestamp: Math.floor((input.now ?? new Date()).getTime() / 1000),
      timezone: "+0000",
    };
    const commit = await serializeSignedCommit(
      {
        tree,
        parents: current ? [current] : [],
        author: when,
        committer: when,
        message: input.message.endsWith("\n") ? input.message : `${input.message}\n`,
      },
      input.key,
    );
    const commitOid = hashObject("commit", commit);
    const unique = new Map<string, NewObject>();
    for (const object of built?.objects ?? []) {
      const oid = hashObject(object.type, object.body);
      if (!store.has(oid)) unique.set(oid, object);
    }
    unique.set(commitOid, { type: "commit", body: commit });
    const pack = await buildSmallPack([...unique.values()]);
    await putPackFiles(bucket, input.repositoryId, pack.packId, pack.pack, pack.index);
    const row = {
      id: pack.packId,
      objectCount: pack.objectCount,
      packBytes: pack.pack.byteLength,
      indexBytes: pack.index.byteLength,
      duplicateObjects: 0,
    };
    const update = { name: input.ref, oldOid: current ?? ZERO_OID, newOid: commitOid, peeled: commitOid };
    if (!(await publishPush(db, input.repositoryId, lease, row, [update]))) {
      await requestSweep(db, input.repositoryId);
      throw new ApiError(409, "repository_busy", "The write lost its lease to another writer; retry");
    }
    return { commitOid, changed: true };
  } finally {
    await releasePushLease(db, input.repositoryId, lease);
  }
}
