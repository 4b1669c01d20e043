import { DurableObject } from "cloudflare:workers";
import { getDb } from "../src/db/client";
import { readControlFrame } from "../src/runtime/frame-schemas";
import type { ControlHubFrame } from "../src/runtime/protocol";
import { liveInstancesOf, markSidecarOffline, markSidecarOnline } from "../src/runtime/sidecars";

type Identity = { sidecarId: string; tenantId: string };

/**
 * One Durable Object per sidecar: holds its control channel (hibernating WebSocket) and tells it which
 * instances to serve. Instance traffic does not pass through here; each instance has its own channel.
 */
export class SidecarObject extends DurableObject<Env> {
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const identity: Identity = {
      sidecarId: request.headers.get("x-sidecar-id") ?? "",
      tenantId: request.headers.get("x-tenant-id") ?? "",
    };
    await this.ctx.storage.put("identity", identity);
    // A new control channel replaces the old one.
    for (const old of this.ctx.getWebSockets()) old.close(4000, "replaced by a new connection");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    this.send(server, { type: "hello", ...identity });
    await markSidecarOnline(getDb(this.env), identity.sidecarId, new Date());
    return new Response(null, { status: 101, webSocket: client });
  }

  private send(ws: WebSocket, frame: ControlHubFrame) {
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      // The socket is closing; the next connection gets the state again.
    }
  }

  /** Asks the connected sidecar to serve an instance; false when it is not connected. */
  async assign(instanceId: string, agentAddress: string): Promise<boolean> {
    const [ws] = this.ctx.getWebSockets();
    if (!ws) return false;
    this.send(ws, {
      type: "instance.assign",
      instanceId,
      agentAddress,
      path: `/api/sidecars/instances/${instanceId}/connect`,
    });
    return true;
  }

  async revoke(instanceId: string, reason: string): Promise<void> {
    const [ws] = this.ctx.getWebSockets();
    if (ws) this.send(ws, { type: "instance.revoke", instanceId, reason });
  }

  async connected(): Promise<boolean> {
    return this.ctx.getWebSockets().length > 0;
  }

  /** A frame that does not match the protocol's schema is answered `frame.error` and not applied. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const read = readControlFrame(message);
    if (!read.ok) {
      this.send(ws, read.error);
      return;
    }
    const { frame } = read;
    const identity = await this.ctx.storage.get<Identity>("identity");
    if (!identity) return;
    const db = getDb(this.env);
    if (frame.type === "ping") {
      this.send(ws, { type: "pong" });
      await markSidecarOnline(db, identity.sidecarId, new Date());
      return;
    }
    if (frame.type === "ready") {
      const live = await liveInstancesOf(db, identity.sidecarId);
      const liveIds = new Set(live.map((i) => i.id));
      for (const instance of live) await this.assign(instance.id, instance.address);
      for (const id of frame.instances) {
        if (!liveIds.has(id)) this.send(ws, { type: "instance.revoke", instanceId: id, reason: "instance_stopped" });
      }
    }
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    await this.offline(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.offline(ws);
  }

  private async offline(closing: WebSocket) {
    const identity = await this.ctx.storage.get<Identity>("identity");
    if (identity && this.ctx.getWebSockets().every((ws) => ws === closing)) {
      await markSidecarOffline(getDb(this.env), identity.sidecarId, new Date());
    }
  }
}
