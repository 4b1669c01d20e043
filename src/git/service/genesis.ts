/**
 * The first commit of a new asset repository: one `.gitignore` on `main`, authored by the hub and signed
 * with the hub key (an SSH signature: `git verify-commit` checks it against the key `GET /api/signing-key`
 * serves).
 */
import type { HubSigningKey } from "../../secrets/hub-signing-key";
import { type Commit, hashObject, type ObjectType, serializeCommit, serializeTree } from "../objects/object";
import { sshSign } from "../objects/sshsig";
import { type IndexEntry, writePackIndex } from "../pack/index-file";
import { writePack } from "../pack/writer";

export const HUB_IDENTITY = { name: "agent-hub", email: "hub@agent-hub.local" } as const;

export const STANDARD_GITIGNORE = [
  ".DS_Store",
  "Thumbs.db",
  "desktop.ini",
  ".idea/",
  ".vscode/",
  "*.swp",
  "*.swo",
  "node_modules/",
  "dist/",
  "build/",
  "target/",
  "*.log",
  "keys/",
  "",
].join("\n");

export type BuiltPack = {
  packId: string;
  pack: Uint8Array;
  index: Uint8Array;
  objectCount: number;
};

/** Writes whole objects into a pack and its index, in memory (only for small hub-made packs). */
export async function buildSmallPack(objects: readonly { type: ObjectType; body: Uint8Array }[]) {
  const entries: IndexEntry[] = [];
  let checksum = "";
  const stream = writePack(objects.length, objects, {
    onEntry: (e) => {
      const object = objects[e.index] as (typeof objects)[number];
      entries.push({ oid: hashObject(object.type, object.body), offset: e.offset, crc32: e.crc32 });
    },
    onEnd: (sum) => {
      checksum = sum;
    },
  });
  const pack = new Uint8Array(await new Response(stream).arrayBuffer());
  return { packId: checksum, pack, index: writePackIndex(entries, checksum), objectCount: objects.length };
}

/** Signs a commit the way git does: over the commit without `gpgsig`, the signature then in that header. */
export async function serializeSignedCommit(commit: Omit<Commit, "extraHeaders">, key: HubSigningKey) {
  const payload = serializeCommit({ ...commit, extraHeaders: [] });
  const signature = await sshSign(payload, key);
  return serializeCommit({ ...commit, extraHeaders: [{ name: "gpgsig", value: signature }] });
}

export async function buildGenesisPack(now: Date, key: HubSigningKey): Promise<BuiltPack & { commitOid: string }> {
  const blob = new TextEncoder().encode(STANDARD_GITIGNORE);
  const tree = serializeTree([{ mode: "100644", name: ".gitignore", oid: hashObject("blob", blob) }]);
  const when = { ...HUB_IDENTITY, timestamp: Math.floor(now.getTime() / 1000), timezone: "+0000" };
  const commit = await serializeSignedCommit(
    { tree: hashObject("tree", tree), parents: [], author: when, committer: when, message: "Initialize repository\n" },
    key,
  );
  const built = await buildSmallPack([
    { type: "commit", body: commit },
    { type: "tree", body: tree },
    { type: "blob", body: blob },
  ]);
  return { ...built, commitOid: hashObject("commit", commit) };
}
