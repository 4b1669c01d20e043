/**
 * Packs over an instance's channel (docs/sidecar-protocol.md, "State and packs"): the hub ships the deploy
 * tree and the attached assets in chunks as it reads them from storage, and takes the sidecar's state
 * pushes chunk by chunk, checking the sequence, then applies them to the instance's repository and answers.
 */
import { createHash } from "node:crypto";
import type { ShippedPack } from "../agent-state/deploy-tree";
import { applyStatePush, MAX_STATE_PACK_BYTES, type StatePushOutcome } from "../agent-state/state-push";
import { getDb } from "../db/client";
import { sessionAsset } from "../db/schema";
import { openRepository } from "../git/service/repository";
import { packOfCommit } from "../git/service/upload-pack";
import { base64ToBytes, bytesToBase64 } from "../lib/base64";
import { concatBytes } from "../lib/bytes";
import type { InstanceSetup } from "./instance-state";
import type { LiveEvents } from "./live-events";
import { type InstanceSidecarFrame, PACK_CHUNK_BYTES } from "./protocol";
import type { SidecarSocket } from "./sidecar-socket";

type Incoming = { transferId: string; nextSeq: number; bytes: number; chunks: Uint8Array[]; error: string | null };
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

  /** One chunk of a state push: kept in order; a gap or an oversize push spoils the transfer. */
  chunk(frame: Extract<InstanceSidecarFrame, { type: "repo.pack.push" }>): void {
    if (!this.incoming || this.incoming.transferId !== frame.transferId) {
      // A new transfer replaces one that never finished (the sidecar gave up on it).
      if (frame.seq !== 0) {
        this.incoming = { transferId: frame.transferId, nextSeq: 0, bytes: 0, chunks: [], error: "a chunk is missing" };
        return;
      }
      this.incoming = { transferId: frame.transferId, nextSeq: 0, bytes: 0, chunks: [], error: null };
    }
    const incoming = this.incoming;
    if (incoming.error) return;
    if (frame.seq !== incoming.nextSeq) {
      incoming.error = `chunk ${incoming.nextSeq} is missing (got ${frame.seq})`;
      incoming.chunks = [];
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = base64ToBytes(frame.data);
    } catch {
      incoming.error = `chunk ${frame.seq} is not base64`;
      incoming.chunks = [];
      return;
    }
    incoming.nextSeq++;
    incoming.bytes += bytes.byteLength;
    if (incoming.bytes > MAX_STATE_PACK_BYTES) {
      incoming.error = `the pack is over ${MAX_STATE_PACK_BYTES} bytes`;
      incoming.chunks = [];
      return;
    }
    incoming.chunks.push(bytes);
  }

  /** The end of a state push: apply it and answer. */
  async done(setup: InstanceSetup, ws: WebSocket, frame: Extract<InstanceSidecarFrame, { type: "repo.pack.done" }>) {
    const { agentAddress } = setup.config;
    const incoming = this.incoming?.transferId === frame.transferId ? this.incoming : null;
    this.incoming = null;
    let outcome: StatePushOutcome;
    if (!incoming && frame.chunks !== 0) {
      outcome = { ok: false, reason: "corrupt", message: "No chunks arrived for this transfer", currentSha: null };
    } else if (incoming?.error) {
      const tooLarge = incoming.error.startsWith("the pack is over");
      outcome = { ok: false, reason: tooLarge ? "too_large" : "corrupt", message: incoming.error, currentSha: null };
    } else if ((incoming?.nextSeq ?? 0) !== frame.chunks) {
      outcome = {
        ok: false,
        reason: "corrupt",
        message: `${incoming?.nextSeq ?? 0} chunks arrived, done says ${frame.chunks}`,
        currentSha: null,
      };
    } else {
      const pack = concatBytes(incoming?.chunks ?? []);
      outcome = await applyStatePush(getDb(this.env), this.env.BLOBS, {
        tenantId: setup.tenantId,
        instanceId: setup.instanceId,
        ref: frame.ref,
        commitSha: frame.commitSha,
        expectedOldSha: frame.expectedOldSha ?? null,
        pack,
      });
    }
    if (outcome.ok) {
      this.events.record("state.pushed", { ref: frame.ref, commitSha: frame.commitSha });
      this.socket.send(ws, {
        type: "repo.pack.ack",
        agentAddress,
        transferId: frame.transferId,
        ref: frame.ref,
        commitSha: frame.commitSha,
      });
      return;
    }
    this.events.record("state.push.rejected", { ref: frame.ref, reason: outcome.reason, message: outcome.message });
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
