/**
 * State packs for the instance channel's tests: commits built from files (real git objects, in a real pack),
 * sent in `repo.pack.push` chunks as a sidecar sends them, and packs the hub sent put back together.
 */
import { hashObject, serializeCommit } from "../../../src/git/objects/object";
import { indexPack } from "../../../src/git/pack/reader";
import { buildSmallPack } from "../../../src/git/service/genesis";
import { treeOfFiles } from "../../../src/git/service/hub-commit";
import { base64ToBytes, bytesToBase64 } from "../../../src/lib/base64";
import { concatBytes } from "../../../src/lib/bytes";
import type { Frame, TestInstanceChannel } from "./test-sidecar";

const encoder = new TextEncoder();

export type StateCommit = { pack: Uint8Array; commitSha: string; tree: string };

/** A commit of `files` (with `parents`), alone in a pack with its trees and blobs. */
export async function stateCommit(
  files: Record<string, string>,
  options: { parents?: string[]; message?: string; time?: number } = {},
): Promise<StateCommit> {
  const { root, objects } = treeOfFiles(new Map(Object.entries(files).map(([p, text]) => [p, encoder.encode(text)])));
  const who = { name: "agent", email: "agent@test", timestamp: options.time ?? 1_700_000_000, timezone: "+0000" };
  const commit = serializeCommit({
    tree: root,
    parents: options.parents ?? [],
    author: who,
    committer: who,
    extraHeaders: [],
    message: `${options.message ?? "checkpoint: inference-done"}\n`,
  });
  const { pack } = await buildSmallPack([{ type: "commit", body: commit }, ...objects]);
  return { pack, commitSha: hashObject("commit", commit), tree: root };
}

let transfers = 0;

/** Sends a state push in chunks and resolves with the hub's answer (`repo.pack.ack` or `repo.pack.reject`). */
export async function pushState(
  channel: TestInstanceChannel,
  pack: Uint8Array,
  done: { commitSha: string; expectedOldSha: string | null; ref?: string },
  options: { chunkBytes?: number; skipSeq?: number; chunks?: number } = {},
): Promise<Frame> {
  const transferId = `test-${++transfers}`;
  const size = options.chunkBytes ?? 64 * 1024;
  let seq = 0;
  for (let offset = 0; offset < pack.length; offset += size) {
    const current = seq++;
    if (current === options.skipSeq) continue;
    channel.send({
      type: "repo.pack.push",
      agentAddress: channel.agentAddress,
      transferId,
      seq: current,
      data: bytesToBase64(pack.subarray(offset, offset + size)),
    });
  }
  const from = channel.log.frames.length;
  channel.send({
    type: "repo.pack.done",
    agentAddress: channel.agentAddress,
    transferId,
    ref: done.ref ?? "refs/heads/main",
    commitSha: done.commitSha,
    expectedOldSha: done.expectedOldSha,
    chunks: options.chunks ?? seq,
  });
  return channel.log.waitFor(
    (f) => (f.type === "repo.pack.ack" || f.type === "repo.pack.reject") && f.transferId === transferId,
    `the answer to ${transferId}`,
    from,
  );
}

/** The packs the hub sent on a channel, each put back together from its chunks, with its `done` frame. */
export function receivedPacks(frames: readonly Frame[]): { done: Frame; pack: Uint8Array }[] {
  return frames
    .filter((f) => f.type === "repo.pack.done")
    .map((done) => {
      const chunks = frames
        .filter((f) => f.type === "repo.pack.push" && f.transferId === done.transferId)
        .sort((a, b) => a.seq - b.seq)
        .map((f) => base64ToBytes(f.data));
      return { done, pack: concatBytes(chunks) };
    });
}

/** Every object of a pack, by id (the pack is checked as git's index-pack checks it). */
export async function objectsOf(pack: Uint8Array): Promise<Map<string, { type: string; body: Uint8Array }>> {
  const objects = new Map<string, { type: string; body: Uint8Array }>();
  await indexPack(pack, { onObject: ({ oid, type, body }) => void objects.set(oid, { type, body }) });
  return objects;
}
