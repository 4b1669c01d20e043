import { createApp } from "./http/app";

export { InstanceObject } from "../durable-objects/instance";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
