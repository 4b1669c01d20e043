/**
 * The OpenAPI 3.1 document is generated from the route definitions (every route is a `createRoute`
 * with zod schemas), never written by hand. `/docs` renders it with Scalar.
 */
import { Scalar } from "@scalar/hono-api-reference";
import type { Router } from "./router";

export const API_TITLE = "Agent Hub";
export const API_VERSION = "0.1.0";

export const tags = [{ name: "System", description: "Liveness and the API description" }] as const;

export function mountOpenApi(app: Router): void {
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: API_TITLE,
      version: API_VERSION,
      description:
        "Multi-tenant control plane for AI agents. Errors are always " +
        '`{"error":{"code","message","requestId","details?"}}`; lists are `{data, nextCursor}`.',
    },
    tags: [...tags],
  });
  app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: `${API_TITLE} API reference` }));
}
