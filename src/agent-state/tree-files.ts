/**
 * Reading files out of a stored git tree: every file under it, the entry at a path, a blob at a path.
 * The REST views and the timeline both read state repositories this way.
 */
import { parseTree, type TreeEntry, treeEntryType } from "../git/objects/object";
import type { ObjectStore } from "../git/storage/object-store";

/** Every file under a tree, recursively, as path (after `prefix`) → blob id. */
export async function filesOfTree(
  store: ObjectStore,
  tree: string,
  prefix = "",
  out = new Map<string, string>(),
): Promise<Map<string, string>> {
  for (const entry of parseTree((await store.get(tree)).body)) {
    const path = `${prefix}${entry.name}`;
    const type = treeEntryType(entry.mode);
    if (type === "tree") await filesOfTree(store, entry.oid, `${path}/`, out);
    else if (type === "blob") out.set(path, entry.oid);
  }
  return out;
}

/** The entry at a slash-separated path of a tree, or null. */
export async function entryAtPath(store: ObjectStore, tree: string, path: string): Promise<TreeEntry | null> {
  let current = tree;
  let entry: TreeEntry | null = null;
  for (const part of path.split("/").filter(Boolean)) {
    const object = await store.read(current);
    if (object?.type !== "tree") return null;
    entry = parseTree(object.body).find((e) => e.name === part) ?? null;
    if (!entry) return null;
    current = entry.oid;
  }
  return entry;
}

/** The blob at a path of a tree, or null when there is none (or it is a directory). */
export async function blobAtPath(store: ObjectStore, tree: string, path: string): Promise<Uint8Array | null> {
  const entry = await entryAtPath(store, tree, path);
  return entry && treeEntryType(entry.mode) === "blob" ? (await store.get(entry.oid)).body : null;
}

/** Every file under a directory of a tree (full paths), or none when there is no such directory. */
export async function filesUnder(store: ObjectStore, tree: string, dir: string): Promise<Map<string, string>> {
  const entry = await entryAtPath(store, tree, dir);
  if (!entry || treeEntryType(entry.mode) !== "tree") return new Map();
  return filesOfTree(store, entry.oid, `${dir}/`);
}
