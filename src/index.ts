import { createApp } from "./http/app";

export { InstanceObject } from "../durable-objects/instance";
export { SidecarObject } from "../durable-objects/sidecar";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
