/**
 * The sidecar's WebSocket for one instance, held by the instance's Durable Object (hibernation API, tag
 * `sidecar`). A socket is trusted once the sidecar has proved itself: at once on the first deploy, after
 * the reconnect challenge otherwise. Frames for an untrusted or absent sidecar are kept in the outbox
 * when they still matter after a reconnect, and dropped otherwise.
 */
import { newChallengeNonce } from "./challenge";
import type { InstanceSetup } from "./instance-state";
import { isKeptWhileAway, type Outbox } from "./outbox";
import type { InstanceHubFrame } from "./protocol";

const TAG = "sidecar";

/** Kept on the socket itself (`serializeAttachment`), so it survives hibernation. */
type SocketState = { verified: boolean; nonce: string | null };

export class SidecarSocket {
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly outbox: Outbox,
  ) {}

  /**
   * Accepts a new connection (closing any older one) and speaks first: a sidecar that never held the
   * instance gets `agent.deploy` and is trusted at once; one that comes back gets the challenge. Returns the
   * client end for the 101 response.
   */
  open(setup: InstanceSetup, returning: boolean): WebSocket {
    for (const old of this.ctx.getWebSockets(TAG)) old.close(4000, "replaced by a new connection");
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [TAG]);
    const nonce = returning ? newChallengeNonce() : null;
    server.serializeAttachment({ verified: nonce === null, nonce } satisfies SocketState);
    const { config, hubPublicKey } = setup;
    const { agentAddress, agentId } = config;
    this.send(
      server,
      nonce
        ? { type: "challenge", agentAddress, nonce }
        : { type: "agent.deploy", agentAddress, agentId, config, hubPublicKey },
    );
    return client;
  }

  /** The nonce a socket must sign, or null once it is trusted. */
  pendingNonce(ws: WebSocket): string | null {
    return this.state(ws).nonce;
  }

  isTrusted(ws: WebSocket): boolean {
    return this.state(ws).verified;
  }

  trust(ws: WebSocket): void {
    ws.serializeAttachment({ verified: true, nonce: null } satisfies SocketState);
  }

  /** The trusted socket, if a sidecar is connected and has proved itself. */
  trusted(): WebSocket | null {
    const ws = this.ctx.getWebSockets(TAG)[0];
    return ws && this.state(ws).verified ? ws : null;
  }

  /** Whether a socket other than `ws` is open (a replacement that arrived before the old one closed). */
  hasOtherThan(ws: WebSocket): boolean {
    return this.ctx.getWebSockets(TAG).some((other) => other !== ws);
  }

  send(ws: WebSocket, frame: InstanceHubFrame): boolean {
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a frame to the trusted sidecar, or keeps it for its return when it still matters then. */
  deliver(frame: InstanceHubFrame): "sent" | "queued" | "dropped" {
    const ws = this.trusted();
    if (ws && this.send(ws, frame)) return "sent";
    if (!isKeptWhileAway(frame)) return "dropped";
    this.outbox.keep(frame);
    return "queued";
  }

  /** Sends what was kept while the sidecar was away, in order; returns the ids of the mail that went out. */
  flushOutbox(ws: WebSocket): string[] {
    return this.outbox.flush((frame) => this.send(ws, frame));
  }

  /** Forgets what was kept: the instance stopped. */
  clearOutbox(): void {
    this.outbox.clear();
  }

  closeAll(code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets(TAG)) ws.close(code, reason);
  }

  private state(ws: WebSocket): SocketState {
    return (ws.deserializeAttachment() as SocketState | null) ?? { verified: false, nonce: null };
  }
}
