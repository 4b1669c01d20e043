import { createApp } from "./app";

// Deployed, INSTANCE is bound to the instances Worker's class (src/instances-worker.ts); this export lets
// the Workers test pool run both in one Worker.
export { InstanceObject } from "../durable-objects/instance";
export { SidecarObject } from "../durable-objects/sidecar";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
