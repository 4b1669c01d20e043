import { createRoute, z } from "@hono/zod-openapi";
import { API_VERSION } from "../http/openapi";
import { createRouter } from "../http/router";

const StatusSchema = z.object({ status: z.literal("ok"), version: z.string() }).openapi("Status");

export const statusRoutes = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/status",
    security: [],
    tags: ["System"],
    summary: "Liveness check",
    responses: {
      200: { description: "The hub is up", content: { "application/json": { schema: StatusSchema } } },
    },
  }),
  (c) => c.json({ status: "ok" as const, version: API_VERSION }, 200),
);
