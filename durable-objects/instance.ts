import { DurableObject } from "cloudflare:workers";
import type { ShippedPack } from "../src/agent-state/deploy-tree";
import { conflict } from "../src/errors";
import { replayForRelay, serveEvents } from "../src/runtime/event-subscriptions";
import { readInstanceFrame } from "../src/runtime/frame-schemas";
import type { ApprovalView } from "../src/runtime/gates";
import { type InstanceSetup, InstanceState, type Phase } from "../src/runtime/instance-state";
import { LiveEvents } from "../src/runtime/live-events";
import {
  announceApprovalDecision,
  announceApprovalRequest,
  pushGrants,
  refreshSources,
  requestStateSync,
  shipRestoredState,
} from "../src/runtime/live-updates";
import { type InstanceMail, InstanceMailbox, type UserMailInput } from "../src/runtime/mailbox";
import { Outbox } from "../src/runtime/outbox";
import { PackTransfers } from "../src/runtime/pack-transfers";
import type { AbortReason, WireGrantRule } from "../src/runtime/protocol";
import { type RelayJoin, RelayRouter, subscribersPerObject } from "../src/runtime/relay-routing";
import { ReplyWaiters } from "../src/runtime/reply-waiters";
import { type RpcResult, rpcResult, sidecarUnavailable } from "../src/runtime/rpc-result";
import { type InstanceParts, onAborted, onSidecarFrame, onSidecarLost, onStopped } from "../src/runtime/sidecar-frames";
import { SidecarSocket } from "../src/runtime/sidecar-socket";
import { sidecarObject } from "../src/runtime/stubs";
import { type TimelineCursors, timelineCursors } from "../src/runtime/timeline-cursors";
import { TurnRecorder } from "../src/runtime/turn-recorder";

const REQUEST_TIMEOUT_MS = 30_000;
const UNDEPLOY_TIMEOUT_MS = 30_000; // long enough for the sidecar to push its state first

/**
 * One Durable Object per agent instance, a shell over the runtime modules: what it keeps (InstanceState),
 * the sidecar's socket and the frames kept for it (SidecarSocket, Outbox), what the sidecar's frames do
 * (sidecar-frames), answers awaited from the sidecar (ReplyWaiters), the event log and its SSE subscribers
 * (LiveEvents), turns (TurnRecorder) and mail (InstanceMailbox). RPC methods that can fail report it as a
 * value (`RpcResult`).
 */
export class InstanceObject extends DurableObject<Env> {
  private readonly parts: InstanceParts;
  /** Set synchronously by the first `stop`, so a concurrent one cannot start a second undeploy. */
  private stopping = false;
  /** Frames from the sidecar are handled one at a time, in arrival order. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const state = new InstanceState(ctx.storage);
    const socket = new SidecarSocket(ctx, new Outbox(ctx.storage.sql));
    const events = new LiveEvents(ctx.storage.sql, () => state.saveCollectorIfDirty());
    const mailbox = new InstanceMailbox(env, ctx.storage, socket, events);
    const turns = new TurnRecorder(env, state, events);
    const packs = new PackTransfers(env, socket, events);
    const relays = new RelayRouter(subscribersPerObject(env));
    this.parts = { env, state, socket, events, relays, replies: new ReplyWaiters(), mailbox, turns, packs };
  }

  /** The Worker authenticated both: `/events` (a subscriber, a relay's feed) and `/connect` (the sidecar's socket). */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/events") return serveEvents(this.parts, request);
    if (url.pathname === "/connect") return this.acceptSidecar();
    return new Response("not found", { status: 404 });
  }

  /** First contact deploys the instance; a sidecar coming back must first answer the challenge. */
  private async acceptSidecar(): Promise<Response> {
    const { state, socket } = this.parts;
    const phase = await state.phase();
    const setup = await state.setup();
    if (phase === "stopped" || phase === "new" || !setup) return new Response("instance is not live", { status: 410 });
    const client = socket.open(setup, (await state.publicKey()) !== undefined);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Checked against the protocol's schemas first: a frame that does not match is answered `frame.error`. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const read = readInstanceFrame(message);
    await this.inOrder(() => onSidecarFrame(this.parts, ws, read), `frame ${read.ok ? read.frame.type : "refused"}`);
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    await this.sidecarLost(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.sidecarLost(ws);
  }

  /** Runs after every frame that arrived before it; a failure is logged and does not stop the chain. */
  private async inOrder<T>(step: () => Promise<T>, what: string): Promise<T | undefined> {
    const run = this.chain.then(step);
    this.chain = run.catch((err) => console.error(`instance ${what} failed`, err));
    return run.catch(() => undefined);
  }

  /** The sidecar is gone (unless another socket of it is still open). */
  private async sidecarLost(ws: WebSocket): Promise<void> {
    if (this.parts.socket.hasOtherThan(ws)) return;
    await this.inOrder(() => onSidecarLost(this.parts), "disconnect");
  }

  /** The setup of a launched instance that has not stopped; a 409 otherwise. */
  private async requireLive(): Promise<InstanceSetup> {
    const setup = await this.parts.state.liveSetup();
    if (!setup) throw conflict("The instance is not live");
    return setup;
  }

  // RPC from the Worker -----------------------------------------------------------------------

  /** Starts serving a launched instance and waits until the sidecar has started it. */
  async launch(setup: InstanceSetup, timeoutMs = REQUEST_TIMEOUT_MS): Promise<RpcResult<void>> {
    const { state, socket, events, replies } = this.parts;
    return rpcResult(async () => {
      await state.begin(setup);
      events.record("instance.launched", { instanceId: setup.instanceId, sidecarId: setup.sidecarId });
      const started = replies.wait<boolean>("launch", timeoutMs);
      const sidecar = setup.sidecarId ? sidecarObject(this.env, setup.sidecarId) : null;
      if (sidecar && !(await sidecar.assign(setup.instanceId, setup.config.agentAddress))) {
        replies.settle("launch", new Error("The sidecar is not connected"));
      }
      try {
        await started;
      } catch (err) {
        await state.setPhase("stopped");
        socket.closeAll(4010, "launch failed");
        throw sidecarUnavailable((err as Error).message);
      }
    });
  }

  /** What `GET …/instances/:id` and `/health` show. */
  async runtime(): Promise<{ phase: Phase; connected: boolean; runtimeStatus: string | null; lastEventSeq: number }> {
    return {
      phase: await this.parts.state.phase(),
      connected: this.parts.socket.trusted() !== null,
      runtimeStatus: await this.parts.turns.runtimeStatus(),
      lastEventSeq: this.parts.events.lastSeq(),
    };
  }

  /** A relay's new subscriber (docs/events.md, "Relays"); `members` is the relay's audience with it. */
  async relayJoin(relay: number, members: number, cursor: number | null): Promise<RelayJoin> {
    return replayForRelay(this.parts, relay, members, cursor);
  }

  /** A relay's audience changed. */
  async relayLoad(relay: number, members: number): Promise<void> {
    this.parts.relays.report(relay, members);
  }

  /** Where each turn and mail of this instance starts in its event log (for the timeline). */
  async timelineCursors(): Promise<TimelineCursors> {
    return timelineCursors(this.parts.events.logged());
  }

  /** A person restored a state commit: a running sidecar gets it, so its branch and files follow. */
  async stateRestored(pack: ShippedPack): Promise<boolean> {
    return (await this.inOrder(() => shipRestoredState(this.parts, pack), "state restore")) ?? false;
  }

  async mailPublicKey(): Promise<string> {
    const setup = await this.parts.state.setup();
    return this.parts.mailbox.publicKeyArmored(setup?.config.agentAddress ?? "agent-hub instance");
  }

  /** A user's mail: signed, threaded after the conversation, delivered (or kept), stored, streamed. */
  async sendUserMail(input: UserMailInput): Promise<RpcResult<InstanceMail>> {
    return rpcResult(async () => {
      const setup = await this.requireLive();
      return this.parts.mailbox.fromUser(setup, input, await this.parts.state.connectorState());
    });
  }

  /** Mail from another agent instance of the tenant. */
  async receiveAgentMail(raw: Uint8Array): Promise<void> {
    const setup = await this.parts.state.liveSetup();
    if (setup) await this.parts.mailbox.fromAgent(setup, raw);
  }

  /**
   * The kill switch: the turn in flight ends now, failed with the reason (whatever the sidecar sends about
   * it afterwards), and the sidecar is told to stop it.
   */
  async abort(reason: AbortReason): Promise<RpcResult<void>> {
    const { socket, replies, turns } = this.parts;
    return rpcResult(async () => {
      const { agentAddress } = (await this.requireLive()).config;
      const ws = socket.trusted();
      if (!ws) throw sidecarUnavailable("The sidecar is not connected");
      await this.inOrder(() => turns.end(reason, `The turn was aborted (${reason})`), "abort");
      const requestId = crypto.randomUUID();
      const answered = replies.wait(requestId, REQUEST_TIMEOUT_MS);
      socket.send(ws, { type: "session.abort", requestId, agentAddress, reason });
      await answered.catch((err: Error) => {
        throw sidecarUnavailable(err.message);
      });
      await onAborted(this.parts, reason);
    });
  }

  /** Asks the sidecar to push its state now (or when it is back). */
  async sync(): Promise<RpcResult<"sent" | "queued">> {
    return rpcResult(
      async () => (await requestStateSync(this.parts)) ?? Promise.reject(conflict("The instance is not live")),
    );
  }

  /** New grants for a running instance, at once (or on its return). */
  async pushGrants(grants: WireGrantRule[]): Promise<void> {
    await pushGrants(this.parts, grants);
  }

  /** An approval of this instance's agent: created by its API request (pending), or decided or expired. */
  async approvalChanged(approval: ApprovalView, gateRequestId: string | null): Promise<void> {
    if (approval.status === "pending") announceApprovalRequest(this.parts, approval);
    else await announceApprovalDecision(this.parts, approval, gateRequestId);
  }

  /** A credential changed: sources that came from it are resolved again and sent. */
  async refreshSources(credentialId: string): Promise<boolean> {
    return refreshSources(this.parts, credentialId);
  }

  /**
   * Stops the instance: the sidecar undeploys it (when connected), the turn in flight fails, the streams
   * end. Only the first of concurrent calls does it; the others are told it is already stopped (409).
   */
  async stop(reason: string): Promise<RpcResult<{ statePushed: boolean }>> {
    const { state, socket, events, replies, turns } = this.parts;
    return rpcResult(async () => {
      if (this.stopping) throw conflict("Instance is already stopped");
      this.stopping = true;
      if ((await state.phase()) === "stopped") throw conflict("Instance is already stopped");
      const setup = await state.setup();
      let statePushed = false;
      const ws = socket.trusted();
      if (setup && ws) {
        const acked = replies.wait<boolean>("undeploy", UNDEPLOY_TIMEOUT_MS);
        socket.send(ws, { type: "agent.undeploy", agentAddress: setup.config.agentAddress, reason });
        statePushed = await acked.catch(() => false);
      } else if (setup?.sidecarId) {
        await sidecarObject(this.env, setup.sidecarId)
          .revoke(setup.instanceId, reason)
          .catch(() => {});
      }
      await turns.abandon("instance_stopped", "The instance was stopped during the turn");
      await state.setPhase("stopped");
      socket.clearOutbox();
      await onStopped(this.parts, reason);
      events.closeAll();
      socket.closeAll(4010, "instance stopped");
      return { statePushed };
    });
  }
}
