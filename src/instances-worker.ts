/**
 * The instances Worker (`wrangler.instances.toml`): one `InstanceObject` per agent instance, in an isolate
 * of its own. The hub binds `INSTANCE` to it by `script_name`, so the objects that stream every event to
 * every subscriber do not share a heap — and its garbage collections — with the API (docs/events.md).
 */
export { InstanceObject } from "../durable-objects/instance";

export default {
  fetch: () => new Response(null, { status: 404 }),
} satisfies ExportedHandler<Env>;
