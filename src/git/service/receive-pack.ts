/**
 * receive-pack: a push is checked completely before any ref moves.
 *
 * 1. The pack streams to R2 as it arrives and is indexed in the same pass: every object parses, every id is
 *    recomputed, the trailer matches. No isolate holds the whole pack.
 * 2. Connectivity: everything a received commit, tree or tag points at is in the pack or the repository.
 * 3. Per command: ref name, token ref pattern, compare-and-set against the current value, the new tip
 *    exists (a commit for branches), fast-forward unless the pusher may force, the repository's own rules
 *    (skills).
 * 4. The index goes to R2 next to the pack, then one D1 batch publishes the pack and moves the accepted
 *    refs, guarded by the push lease. Anything refused deletes the pack: the repository stays as it was.
 */
import { GitFormatError } from "../objects/errors";
import { type ObjectType, parseCommit, parseTag, parseTree, treeEntryType } from "../objects/object";
import { ZERO_OID } from "../objects/oid";
import { readPackIndex, writePackIndex } from "../pack/index-file";
import { indexPack } from "../pack/reader";
import { isProtocolError } from "../protocol/errors";
import type { RefCommand } from "../protocol/receive-request";
import type { RefStatus } from "../protocol/report-status";
import type { ObjectStore } from "../storage/object-store";
import { putIndexFile } from "../storage/pack-files";
import { PackUpload } from "../storage/pack-upload";
import type { PackRow, RefRow, RefUpdate } from "../storage/repositories";

export type PushPolicy = {
  /** Whether the pusher may move `ref` at all (token ref pattern). */
  mayUpdate(ref: string): boolean;
  /** Whether the pusher may rewrite history (non-fast-forward). */
  mayForce: boolean;
  /** Repository-specific content rules; returns why the new tip is refused, or null. */
  validateTip?: (ref: string, commitOid: string, store: ObjectStore) => Promise<string | null>;
  /** New tips must arrive in this push's pack (a state push names the commit its pack carries). */
  tipsInPack?: boolean;
};

/** The reason a ref is refused when `tipsInPack` holds and its new tip is not in the pack. */
export const TIP_NOT_IN_PACK = "the new tip is not in the pack";

export type PushInput = {
  bucket: R2Bucket;
  repositoryId: string;
  store: ObjectStore;
  currentRefs: readonly RefRow[];
  /** The commands; a promise when they are only known once the pack has arrived (a sidecar's state push). */
  commands: readonly RefCommand[] | Promise<readonly RefCommand[]>;
  /** The pack as it arrives, or null when the push only deletes refs. */
  pack: ReadableStream<Uint8Array> | null;
  atomic: boolean;
  policy: PushPolicy;
};

export type PushOutcome = {
  unpackError: string | null;
  statuses: RefStatus[];
  /** What to publish, when anything: the stored pack and the ref moves. */
  publish: { pack: PackRow | null; updates: RefUpdate[] } | null;
};

const MAX_ANCESTRY_WALK = 200_000;

/** Streams a received pack to R2 while indexing it, then checks connectivity; returns the store that sees it. */
async function receivePack(
  bucket: R2Bucket,
  repositoryId: string,
  store: ObjectStore,
  pack: ReadableStream<Uint8Array>,
) {
  // A set: trees of successive commits repeat most entries, so a list would grow with history × tree size.
  const references = new Set<string>();
  const received = new Set<string>();
  const upload = new PackUpload(bucket, repositoryId);
  try {
    const indexed = await indexPack(pack, {
      sink: upload,
      loadExternal: async (oid) => (await store.read(oid)) ?? null,
      onObject: ({ oid, type, body }) => {
        received.add(oid);
        if (type === "commit") {
          const commit = parseCommit(body);
          references.add(commit.tree);
          for (const parent of commit.parents) references.add(parent);
        } else if (type === "tree") {
          for (const entry of parseTree(body)) if (treeEntryType(entry.mode) !== "commit") references.add(entry.oid);
        } else if (type === "tag") {
          references.add(parseTag(body).object);
        }
      },
    });
    for (const oid of references) {
      if (!received.has(oid) && !store.has(oid))
        throw new GitFormatError(`missing object ${oid} referenced by the pack`);
    }
    references.clear();
    let duplicateObjects = 0;
    for (const entry of indexed.entries) if (store.has(entry.oid)) duplicateObjects++;
    const indexBytes = writePackIndex(indexed.entries, indexed.packChecksum);
    const row: PackRow = {
      id: upload.packId,
      objectCount: indexed.entries.length,
      packBytes: indexed.packBytes,
      indexBytes: indexBytes.byteLength,
      duplicateObjects,
    };
    const combined = store.withPack(row, readPackIndex(indexBytes), upload.reader);
    return { row, indexBytes, received, combined, discard: () => upload.discard() };
  } catch (error) {
    await upload.discard();
    throw error;
  }
}

async function typeOf(store: ObjectStore, oid: string): Promise<ObjectType | null> {
  return (await store.read(oid))?.type ?? null;
}

/** What an object peels to: the end of its chain of annotated tags, or itself when it is not a tag. */
async function peel(store: ObjectStore, oid: string): Promise<string> {
  let current = oid;
  for (let hops = 0; hops < 16; hops++) {
    const object = await store.read(current);
    if (object?.type !== "tag") return current;
    current = parseTag(object.body).object;
  }
  throw new GitFormatError(`tag chain at ${oid} is too long`);
}

/** Whether `ancestor` is reachable from `descendant` through parents. */
export async function isAncestor(store: ObjectStore, ancestor: string, descendant: string): Promise<boolean> {
  const seen = new Set<string>([descendant]);
  const queue = [descendant];
  for (let i = 0; i < queue.length && i < MAX_ANCESTRY_WALK; i++) {
    const oid = queue[i] as string;
    if (oid === ancestor) return true;
    const object = await store.read(oid);
    if (object?.type !== "commit") continue;
    for (const parent of parseCommit(object.body).parents) {
      if (!seen.has(parent)) {
        seen.add(parent);
        queue.push(parent);
      }
    }
  }
  return false;
}

async function checkCommand(
  command: RefCommand,
  current: ReadonlyMap<string, string>,
  store: ObjectStore,
  policy: PushPolicy,
): Promise<string | null> {
  if (command.refError) return `funny refname: ${command.refError}`;
  if (!policy.mayUpdate(command.ref)) return "forbidden by the token's ref pattern";
  const now = current.get(command.ref) ?? ZERO_OID;
  if (now !== command.oldOid) return command.oldOid === ZERO_OID ? "already exists" : "stale info";
  if (command.kind === "delete") return null;
  const type = await typeOf(store, command.newOid);
  if (!type) return "missing necessary objects";
  if (command.ref.startsWith("refs/heads/") && type !== "commit") return "branches must point at commits";
  if (command.kind === "update" && type === "commit" && !policy.mayForce) {
    const oldType = await typeOf(store, command.oldOid);
    if (oldType === "commit" && !(await isAncestor(store, command.oldOid, command.newOid))) return "non-fast-forward";
  }
  if (policy.validateTip && type === "commit") return policy.validateTip(command.ref, command.newOid, store);
  return null;
}

/** Checks a push and stores its pack; the caller publishes `publish` under the lease. */
export async function preparePush(input: PushInput): Promise<PushOutcome> {
  let store = input.store;
  let received: Awaited<ReturnType<typeof receivePack>> | null = null;
  if (input.pack) {
    try {
      received = await receivePack(input.bucket, input.repositoryId, store, input.pack);
      store = received.combined;
    } catch (err) {
      // A body over the limit or badly encoded is the pusher's fault too: git prints it as the unpack error.
      if (!(err instanceof GitFormatError) && !isProtocolError(err)) throw err;
      const commands = await input.commands;
      return {
        unpackError: err.message,
        statuses: commands.map((c) => ({ ref: c.ref, ok: false, reason: "unpacker error" })),
        publish: null,
      };
    }
  }
  try {
    const outcome = await checkCommands(input, store, received?.received ?? null);
    if (!received) return outcome;
    const updates = outcome.publish?.updates ?? [];
    if (!updates.some((u) => u.newOid !== ZERO_OID)) {
      await received.discard();
      return outcome;
    }
    await putIndexFile(input.bucket, input.repositoryId, received.row.id, received.indexBytes);
    return { ...outcome, publish: { pack: received.row, updates } };
  } catch (error) {
    await received?.discard();
    throw error;
  }
}

/** Each command checked against the refs and the store (which sees the received pack). */
async function checkCommands(
  input: PushInput,
  store: ObjectStore,
  received: ReadonlySet<string> | null,
): Promise<PushOutcome> {
  const commands = await input.commands;
  const current = new Map(input.currentRefs.map((r) => [r.name, r.oid]));
  const statuses: RefStatus[] = [];
  const updates: RefUpdate[] = [];
  const seen = new Set<string>();
  for (const command of commands) {
    let reason = seen.has(command.ref) ? "duplicate ref in the push" : null;
    seen.add(command.ref);
    if (input.policy.tipsInPack && command.newOid !== ZERO_OID && !received?.has(command.newOid)) {
      reason ??= TIP_NOT_IN_PACK;
    }
    reason ??= await checkCommand(command, current, store, input.policy);
    if (reason) statuses.push({ ref: command.ref, ok: false, reason });
    else {
      statuses.push({ ref: command.ref, ok: true });
      const peeled = command.newOid === ZERO_OID ? ZERO_OID : await peel(store, command.newOid);
      updates.push({ name: command.ref, oldOid: command.oldOid, newOid: command.newOid, peeled });
    }
  }
  if (input.atomic && statuses.some((s) => !s.ok)) {
    return {
      unpackError: null,
      statuses: statuses.map((s) => (s.ok ? { ref: s.ref, ok: false, reason: "atomic push failed" } : s)),
      publish: null,
    };
  }
  return { unpackError: null, statuses, publish: updates.length > 0 ? { pack: null, updates } : null };
}
