import { createRoute, z } from "@hono/zod-openapi";
import { catalogTenantsOf, listModels } from "../catalog/models";
import { getDb } from "../db/client";
import { requireUser, signedInUser } from "../http/middleware/session";
import { errors, jsonBody } from "../http/responses";
import { createRouter } from "../http/router";

const Price = z.string().openapi({ description: "Exact decimal string, per million tokens", example: "2.5" });

export const ModelInfoSchema = z
  .object({
    id: z.string().openapi({ description: "The model id as the provider names it", example: "gpt-4o" }),
    providerId: z.string(),
    providerName: z.string(),
    name: z.string().openapi({ description: "Display name; the id when the provider gives none" }),
    description: z.string().optional(),
    capabilities: z.array(z.string()).optional(),
    pricing: z
      .object({
        input: Price.optional(),
        output: Price.optional(),
        cacheRead: Price.optional(),
        cacheWrite: Price.optional(),
        currency: z.string().optional(),
      })
      .optional(),
    limits: z
      .object({
        context: z.number().int().optional().openapi({ description: "Context window, in tokens" }),
        output: z.number().int().optional().openapi({ description: "Maximum output, in tokens" }),
      })
      .optional(),
  })
  .openapi("ModelInfo");

const ModelListSchema = z
  .object({
    data: z.array(ModelInfoSchema),
    nextCursor: z.string().nullable().openapi({ description: "Always null: the catalog comes in one page" }),
  })
  .openapi("ModelList");

const ModelsQuery = z.object({
  tenantId: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .openapi({ description: "Only this tenant's catalog (the caller must be an active member)" }),
});

export const modelRoutes = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/api/models",
    tags: ["Discovery"],
    summary: "Models the caller can use, with pricing and limits",
    description:
      "Models come from the `metadata.models` of the providers a tenant sees (its own and its ancestors', " +
      "a nearer provider shadowing a farther one of the same name). With `tenantId`: that tenant's catalog; " +
      "a tenant the caller is not an active member of is a 404, and reading it needs `provider:*` read " +
      "(403). Without it: the union over every tenant where the caller is an active member with " +
      "`provider:*` read, each provider's models once. Sorted by provider name, then model id.",
    middleware: [requireUser()] as const,
    request: { query: ModelsQuery },
    responses: { 200: jsonBody(ModelListSchema, "The models"), ...errors(400, 401, 403, 404) },
  }),
  async (c) => {
    const db = getDb(c.env);
    const tenantIds = await catalogTenantsOf(db, signedInUser(c).id, {
      tenantId: c.req.valid("query").tenantId,
      now: Date.now(),
      ip: c.req.header("cf-connecting-ip") ?? null,
    });
    return c.json({ data: await listModels(db, tenantIds), nextCursor: null }, 200);
  },
);
