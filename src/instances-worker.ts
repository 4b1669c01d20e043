/**
 * The instances Worker (`wrangler.instances.toml`): one `InstanceObject` per agent instance, and the relays
 * of their live events (`EventRelayObject`), in an isolate of its own. The hub binds `INSTANCE` and
 * `EVENT_RELAY` to it by `script_name`, so the objects that stream every event to every subscriber do not
 * share a heap — and its garbage collections — with the API (docs/events.md).
 */
export { EventRelayObject } from "../durable-objects/event-relay";
export { InstanceObject } from "../durable-objects/instance";

export default {
  fetch: () => new Response(null, { status: 404 }),
} satisfies ExportedHandler<Env>;
