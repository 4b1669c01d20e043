import { DurableObject } from "cloudflare:workers";

/**
 * One Durable Object per agent instance. It will hold the sidecar's websocket for the instance, the
 * event log and its SSE subscribers; for now it is the shell the wrangler migration declares.
 */
export class InstanceObject extends DurableObject<Env> {
  async ping(): Promise<string> {
    return "pong";
  }
}
