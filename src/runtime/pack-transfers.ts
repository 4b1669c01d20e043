/**
 * Packs over an instance's channel (docs/sidecar-protocol.md, "State and packs"): the hub ships the deploy
 * tree and the attached assets in chunks as it reads them from storage, and takes the sidecar's state
 * pushes chunk by chunk: the push starts at the first chunk and reads the chunks as a stream (to storage,
 * indexed as they arrive), so a state pack is never held whole; `repo.pack.done` names the ref and ends it.
 */
import { createHash } from "node:crypto";
import type { ShippedPack } from "../agent-state/deploy-tree";
import {
  applyStatePush,
  MAX_STATE_PACK_BYTES,
  type StatePushOutcome,
  StatePushRefused,
  type StatePushTarget,
} from "../agent-state/state-push";
import { getDb } from "../db/client";
import { sessionAsset } from "../db/schema";
import { openRepository } from "../git/service/repository";
import { packOfCommit } from "../git/service/upload-pack";
import { base64ToBytes, bytesToBase64 } from "../lib/base64";
import { concatBytes } from "../lib/bytes";
import { hubLog } from "./instance-logs";
import type { InstanceSetup } from "./instance-state";
import type { LiveEvents } from "./live-events";
import { type InstanceSidecarFrame, PACK_CHUNK_BYTES } from "./protocol";
import type { SidecarSocket } from "./sidecar-socket";

/** A state push being received: its chunks feed `pack`, `done` settles `target`, `outcome` is the push. */
type Incoming = {
  transferId: string;
  nextSeq: number;
  bytes: number;
  pack: ReadableStreamDefaultController<Uint8Array> | null;
  target: { resolve(target: StatePushTarget): void; reject(error: StatePushRefused): void };
  outcome: Promise<StatePushOutcome>;
  failed: boolean;
};
type Shipped = ShippedPack & { packSha256: string };

export class PackTransfers {
  /** Packs sent and not yet answered, by transfer id. */
  private readonly shipped = new Map<string, Shipped>();
  /** The state push being received (one at a time). */
  private incoming: Incoming | null = null;
  private counter = 0;

  constructor(
    private readonly env: Env,
    private readonly socket: SidecarSocket,
    private readonly events: LiveEvents,
  ) {}

  /** Sends each pack as chunks then `repo.pack.done`; answers come later as frames. */
  async ship(ws: WebSocket, setup: InstanceSetup, packs: readonly ShippedPack[]): Promise<void> {
    const db = getDb(this.env);
    const { agentAddress } = setup.config;
    for (const pack of packs) {
      const transferId = `pack-${Date.now()}-${++this.counter}`;
      const { store } = await openRepository(db, this.env.BLOBS, pack.repositoryId);
      const reader = (await packOfCommit(store, pack.commitSha)).getReader();
      const digest = createHash("sha256");
      let seq = 0;
      let pending = new Uint8Array(0);
      const flush = (bytes: Uint8Array) => {
        digest.update(bytes);
        this.socket.send(ws, {
          type: "repo.pack.push",
          agentAddress,
          transferId,
          seq: seq++,
          data: bytesToBase64(bytes),
        });
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const joined = concatBytes([pending, value]);
        let offset = 0;
        for (; joined.length - offset >= PACK_CHUNK_BYTES; offset += PACK_CHUNK_BYTES) {
          flush(joined.subarray(offset, offset + PACK_CHUNK_BYTES));
        }
        pending = joined.slice(offset);
      }
      if (pending.length > 0) flush(pending);
      this.shipped.set(transferId, { ...pack, packSha256: digest.digest("hex") });
      this.socket.send(ws, {
        type: "repo.pack.done",
        agentAddress,
        transferId,
        repoId: pack.repoId,
        ref: pack.ref,
        commitSha: pack.commitSha,
        chunks: seq,
        ...(pack.mountPath ? { mountPath: pack.mountPath } : {}),
      });
    }
  }

  /** The sidecar's answer to a pack the hub sent: an asset it took is recorded for the session. */
  async answered(
    setup: InstanceSetup,
    frame: Extract<InstanceSidecarFrame, { type: "repo.pack.ack" | "repo.pack.reject" }>,
  ): Promise<void> {
    const pack = this.shipped.get(frame.transferId);
    if (!pack) return;
    this.shipped.delete(frame.transferId);
    if (frame.type === "repo.pack.reject") {
      this.events.record("pack.rejected", {
        repoId: pack.repoId,
        ref: pack.ref,
        commitSha: pack.commitSha,
        reason: frame.reason,
        message: frame.message,
      });
      const what = `${pack.ref} (${pack.repoId.kind} ${pack.repoId.id})`;
      await hubLog(
        this.env,
        setup,
        "warn",
        `The sidecar refused the pack of ${what}: ${frame.reason}: ${frame.message}`,
        {
          repoId: pack.repoId,
          ref: pack.ref,
          commitSha: pack.commitSha,
          reason: frame.reason,
        },
      );
      return;
    }
    if (!pack.agentAssetId || !pack.mountPath) return;
    await getDb(this.env)
      .insert(sessionAsset)
      .values({
        instanceId: setup.instanceId,
        agentAssetId: pack.agentAssetId,
        mountPath: pack.mountPath,
        assetPackSha: pack.packSha256,
        sourceCommitSha: pack.commitSha,
      })
      .onConflictDoUpdate({
        target: [sessionAsset.instanceId, sessionAsset.agentAssetId],
        set: { assetPackSha: pack.packSha256, sourceCommitSha: pack.commitSha, materializedAt: new Date() },
      });
  }

  /** Starts applying a state push whose chunks follow (none when `withPack` is false). */
  private start(setup: InstanceSetup, transferId: string, withPack = true): Incoming {
    let pack: ReadableStreamDefaultController<Uint8Array> | null = null;
    const stream = withPack
      ? new ReadableStream<Uint8Array>({
          start: (controller) => {
            pack = controller;
          },
        })
      : null;
    let target!: Incoming["target"];
    const targetPromise = new Promise<StatePushTarget>((resolve, reject) => (target = { resolve, reject }));
    const outcome = applyStatePush(getDb(this.env), this.env.BLOBS, {
      tenantId: setup.tenantId,
      instanceId: setup.instanceId,
      pack: stream,
      target: targetPromise,
    });
    // Nobody awaits a push the channel abandoned; its failure is not an error of the object.
    outcome.catch(() => {});
    return { transferId, nextSeq: 0, bytes: 0, pack, target, outcome, failed: false };
  }

  /** Spoils a transfer: its push stops reading and is refused with this reason. */
  private fail(incoming: Incoming, reason: StatePushRefused["reason"], message: string): void {
    if (incoming.failed) return;
    incoming.failed = true;
    const error = new StatePushRefused(reason, message);
    try {
      incoming.pack?.error(error);
    } catch {
      // the push already stopped reading (the repository was busy)
    }
    incoming.target.reject(error);
  }

  /** The channel closed: a state push in progress is abandoned and writes nothing. */
  abandon(): void {
    if (this.incoming) this.fail(this.incoming, "corrupt", "the channel closed during the transfer");
    this.incoming = null;
  }

  /** One chunk of a state push: handed on in order; a gap or an oversize push spoils the transfer. */
  chunk(setup: InstanceSetup, frame: Extract<InstanceSidecarFrame, { type: "repo.pack.push" }>): void {
    if (!this.incoming || this.incoming.transferId !== frame.transferId) {
      // A new transfer replaces one that never finished (the sidecar gave up on it).
      this.abandon();
      this.incoming = this.start(setup, frame.transferId);
    }
    const incoming = this.incoming;
    if (incoming.failed) return;
    if (frame.seq !== incoming.nextSeq) {
      this.fail(incoming, "corrupt", `chunk ${incoming.nextSeq} is missing (got ${frame.seq})`);
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = base64ToBytes(frame.data);
    } catch {
      this.fail(incoming, "corrupt", `chunk ${frame.seq} is not base64`);
      return;
    }
    incoming.nextSeq++;
    incoming.bytes += bytes.byteLength;
    if (incoming.bytes > MAX_STATE_PACK_BYTES) {
      this.fail(incoming, "too_large", `the pack is over ${MAX_STATE_PACK_BYTES} bytes`);
      return;
    }
    try {
      incoming.pack?.enqueue(bytes);
    } catch {
      // the push already stopped reading (the repository was busy): the answer says so at `done`
    }
  }

  /** The end of a state push: the push learns its ref, finishes, and the sidecar gets the answer. */
  async done(setup: InstanceSetup, ws: WebSocket, frame: Extract<InstanceSidecarFrame, { type: "repo.pack.done" }>) {
    const { agentAddress } = setup.config;
    let incoming = this.incoming?.transferId === frame.transferId ? this.incoming : null;
    this.incoming = null;
    if (!incoming) {
      incoming = this.start(setup, frame.transferId, false);
      if (frame.chunks !== 0) this.fail(incoming, "corrupt", "No chunks arrived for this transfer");
    } else if (incoming.nextSeq !== frame.chunks) {
      this.fail(incoming, "corrupt", `${incoming.nextSeq} chunks arrived, done says ${frame.chunks}`);
    }
    if (!incoming.failed) {
      try {
        incoming.pack?.close();
      } catch {
        // the push already stopped reading
      }
      incoming.target.resolve({
        ref: frame.ref,
        commitSha: frame.commitSha,
        expectedOldSha: frame.expectedOldSha ?? null,
      });
    }
    const outcome = await incoming.outcome;
    if (outcome.ok) {
      this.events.record("state.pushed", { ref: frame.ref, commitSha: frame.commitSha });
      await hubLog(this.env, setup, "info", `State pushed: ${frame.ref} at ${frame.commitSha}`, {
        ref: frame.ref,
        commitSha: frame.commitSha,
      });
      this.socket.send(ws, {
        type: "repo.pack.ack",
        agentAddress,
        transferId: frame.transferId,
        ref: frame.ref,
        commitSha: frame.commitSha,
      });
      return;
    }
    const rejected = { ref: frame.ref, reason: outcome.reason, message: outcome.message };
    this.events.record("state.push.rejected", rejected);
    await hubLog(this.env, setup, "warn", `State push to ${frame.ref} refused: ${outcome.reason}`, rejected);
    this.socket.send(ws, {
      type: "repo.pack.reject",
      agentAddress,
      transferId: frame.transferId,
      reason: outcome.reason,
      message: outcome.message,
      currentSha: outcome.currentSha,
    });
  }
}
