import { DurableObject } from "cloudflare:workers";
import { resumeCursor } from "../src/runtime/live-events";
import { EventRelay } from "../src/runtime/relay";
import { RELAY_HEADER, RELAY_INSTANCE_HEADER } from "../src/runtime/relay-routing";
import { instanceObject } from "../src/runtime/stubs";

/**
 * One relay of an instance's live events (docs/events.md, "Relays"), a shell over EventRelay: the Worker
 * sends it the subscribers the instance's object assigns to it. Named `<instanceId>:<index>`.
 */
export class EventRelayObject extends DurableObject<Env> {
  private relay: EventRelay | null = null;

  override async fetch(request: Request): Promise<Response> {
    const instanceId = request.headers.get(RELAY_INSTANCE_HEADER);
    const index = Number(request.headers.get(RELAY_HEADER));
    if (!instanceId || !Number.isSafeInteger(index)) return new Response("not a relay request", { status: 400 });
    this.relay ??= new EventRelay(instanceObject(this.env, instanceId), index);
    return this.relay.open(resumeCursor(request));
  }
}
