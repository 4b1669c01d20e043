/**
 * What an instance does with each frame its sidecar sends (docs/sidecar-protocol.md): the deploy and start
 * handshake, answers to requests that wait for them, inference events, the agent's mail and connector
 * state. A socket that has not proved itself may only answer the reconnect challenge.
 */
import { getDb } from "../db/client";
import { secretBox } from "../secrets/encryption";
import { verifyChallenge } from "./challenge";
import type { ReadFrame } from "./frame-schemas";
import { answerGate } from "./gates";
import { hubLog, sidecarLog } from "./instance-logs";
import type { InstanceSetup, InstanceState } from "./instance-state";
import { markInstanceRunning, recordInstanceKey } from "./instances";
import type { LiveEvents } from "./live-events";
import type { InstanceMailbox } from "./mailbox";
import type { PackTransfers } from "./pack-transfers";
import type { InstanceSidecarFrame } from "./protocol";
import type { RelayRouter } from "./relay-routing";
import type { ReplyWaiters } from "./reply-waiters";
import { currentGrantsAndSources } from "./sidecar-config";
import type { SidecarSocket } from "./sidecar-socket";
import type { TurnRecorder } from "./turn-recorder";

/** The parts of an instance's Durable Object that frames act on. */
export type InstanceParts = {
  env: Env;
  state: InstanceState;
  socket: SidecarSocket;
  events: LiveEvents;
  /** Which relay serves the subscribers past the object's own share. */
  relays: RelayRouter;
  replies: ReplyWaiters;
  mailbox: InstanceMailbox;
  turns: TurnRecorder;
  packs: PackTransfers;
};

/**
 * Acts on what arrived on the channel: a frame that matched its schema, or else the `frame.error` that
 * refuses it (src/runtime/frame-schemas.ts), sent back in turn with the answers to the frames before it.
 */
export async function onSidecarFrame(
  parts: InstanceParts,
  ws: WebSocket,
  read: ReadFrame<InstanceSidecarFrame>,
): Promise<void> {
  const { state, socket, events, replies } = parts;
  if (!read.ok) {
    socket.send(ws, read.error);
    const { frameType, field, message } = read.error;
    const setup = await state.setup();
    const what = `${frameType ?? "a frame"}${field ? ` (${field})` : ""}`;
    if (setup) await hubLog(parts.env, setup, "warn", `Refused ${what} from the sidecar: ${message}`, read.error);
    return;
  }
  const { frame } = read;
  const setup = await state.setup();
  if (!setup) return;
  if (frame.type === "ping") {
    socket.send(ws, { type: "pong" });
    return;
  }
  if (!socket.isTrusted(ws)) {
    if (frame.type === "challenge.response") await answerChallenge(parts, ws, setup, frame);
    return;
  }
  const db = getDb(parts.env);
  switch (frame.type) {
    case "agent.deploy.ack":
      await state.setPublicKey(frame.publicKey);
      await recordInstanceKey(db, setup.instanceId, frame.publicKey);
      // The sidecar handles frames in order: the packs are in place before it starts.
      await parts.packs.ship(ws, setup, setup.packs ?? []);
      socket.send(ws, { type: "session.start", agentAddress: setup.config.agentAddress });
      await hubLog(parts.env, setup, "info", "Deployed: the sidecar acknowledged with the instance's key", {
        publicKey: frame.publicKey,
      });
      return;
    case "session.start.ack":
      await state.setPhase("running");
      await markInstanceRunning(db, setup.instanceId);
      events.record("instance.running", { instanceId: setup.instanceId });
      replies.settle("launch", null, true);
      await hubLog(parts.env, setup, "info", "Running: the sidecar started the session");
      return;
    case "agent.error":
      replies.settle("launch", new Error(frame.error || "The sidecar could not deploy the instance"));
      await hubLog(parts.env, setup, "error", `The sidecar could not deploy the instance: ${frame.error}`);
      return;
    case "session.ack":
      replies.settle(frame.requestId, null, true);
      return;
    case "session.error":
      replies.settle(frame.requestId, new Error(frame.error || "The sidecar refused the request"));
      return;
    case "agent.undeploy.ack":
      replies.settle("undeploy", null, frame.statePushed);
      return;
    case "agent.event": {
      const charge = await parts.turns.record(setup, frame.event);
      if (charge?.outcome === "exhausted") await exhausted(parts, setup, charge);
      return;
    }
    case "connector.state.changed":
      await state.setConnectorState(frame.connectorState);
      return;
    case "mail.outbound":
      await parts.mailbox.fromSidecar(setup, frame.rawMessage, frame.recipients);
      return;
    case "gate.request":
      await answerGate(parts, setup, frame);
      return;
    case "repo.pack.push":
      parts.packs.chunk(setup, frame);
      return;
    case "repo.pack.done":
      await parts.packs.done(setup, ws, frame);
      return;
    case "repo.pack.ack":
    case "repo.pack.reject":
      await parts.packs.answered(setup, frame);
      return;
    case "log":
      await sidecarLog(parts.env, setup, frame);
      return;
  }
}

/**
 * A returning sidecar signs the nonce with the instance key. Proven, it gets the grants and sources as they
 * are now, then what was kept for it; otherwise the socket is closed.
 */
async function answerChallenge(
  parts: InstanceParts,
  ws: WebSocket,
  setup: InstanceSetup,
  { signature, deployRef }: Extract<InstanceSidecarFrame, { type: "challenge.response" }>,
) {
  const { state, socket } = parts;
  const { agentAddress } = setup.config;
  const publicKey = await state.publicKey();
  const nonce = socket.pendingNonce(ws);
  if (!publicKey || !nonce || !(await verifyChallenge(publicKey, nonce, agentAddress, signature))) {
    socket.send(ws, { type: "challenge.failed", agentAddress, reason: "invalid signature" });
    ws.close(4003, "challenge failed");
    await hubLog(parts.env, setup, "warn", "A reconnecting sidecar failed the challenge: its socket was closed");
    return;
  }
  socket.trust(ws);
  // The sidecar stopped the turn in flight when its channel dropped. Usually the hub saw the drop and failed
  // the turn then; after a crash of the hub nothing did, and the turn would stay running for good.
  await failTurnOfLostSidecar(parts);
  const current = await currentGrantsAndSources(getDb(parts.env), secretBox(parts.env), setup);
  socket.send(ws, { type: "grants.update", requestId: crypto.randomUUID(), agentAddress, grants: current.grants });
  if (current.sources) {
    await state.setSources(current.sources);
    socket.send(ws, {
      type: "sources.update",
      requestId: crypto.randomUUID(),
      agentAddress,
      sources: current.sources,
      defaultSource: current.sources[0]?.id ?? setup.config.defaultSource,
    });
  }
  // A sidecar that lost its deploy tree (or never had this one) gets the packs again.
  if (setup.deployCommit && deployRef !== setup.deployCommit) await parts.packs.ship(ws, setup, setup.packs ?? []);
  await parts.mailbox.markDelivered(socket.flushOutbox(ws));
  await state.setPhase("running");
  parts.events.record("sidecar.reconnected", { instanceId: setup.instanceId });
  await hubLog(parts.env, setup, "info", "The sidecar reconnected and proved the instance's key");
}

/**
 * The wallet could not pay for a model call: the stream says why, the turn ends failed with
 * `wallet_exhaustion`, and the sidecar is told to stop it (it gets no more model calls paid for).
 */
async function exhausted(
  parts: InstanceParts,
  setup: InstanceSetup,
  charge: { amount: string; balance: string; currency: string },
): Promise<void> {
  const { agentAddress } = setup.config;
  const exhaustion = {
    walletId: setup.walletId,
    required: charge.amount,
    balance: charge.balance,
    currency: charge.currency,
  };
  parts.events.record("wallet.exhausted", exhaustion);
  const message = `The wallet ${setup.walletId} could not pay ${charge.amount} ${charge.currency} (balance ${charge.balance}): the turn is stopped`;
  await hubLog(parts.env, setup, "error", message, exhaustion);
  await parts.turns.end("wallet_exhaustion", `The wallet could not pay ${charge.amount} ${charge.currency}`);
  parts.socket.deliver({
    type: "session.abort",
    requestId: crypto.randomUUID(),
    agentAddress,
    reason: "wallet_exhaustion",
  });
}

/** A turn in flight when the sidecar's channel dropped cannot finish (the sidecar stops it): failed. */
function failTurnOfLostSidecar(parts: InstanceParts): Promise<void> {
  return parts.turns.end("sidecar_disconnected", "The sidecar disconnected during the turn");
}

/** The sidecar is gone: a running turn or state push cannot finish, so it is failed now, and said so. */
export async function onSidecarLost(parts: InstanceParts): Promise<void> {
  parts.packs.abandon();
  const setup = await parts.state.liveSetup();
  if (!setup) return;
  await failTurnOfLostSidecar(parts);
  parts.events.record("sidecar.disconnected", { instanceId: setup.instanceId });
  parts.replies.settle("launch", new Error("The sidecar disconnected"));
  await hubLog(parts.env, setup, "warn", "The sidecar disconnected");
}

/** The sidecar acknowledged an abort (the kill switch): the stream and the logs say so. */
export async function onAborted(parts: InstanceParts, reason: string): Promise<void> {
  parts.events.record("session.aborted", { reason });
  const setup = await parts.state.setup();
  if (setup) await hubLog(parts.env, setup, "warn", `Aborted (${reason}): the sidecar stopped the turn`, { reason });
}

/** The instance stopped: the stream's last event, and the logs. */
export async function onStopped(parts: InstanceParts, reason: string): Promise<void> {
  parts.events.record("session.ended", { reason });
  const setup = await parts.state.setup();
  if (setup) await hubLog(parts.env, setup, "info", `Stopped (${reason})`, { reason });
}
