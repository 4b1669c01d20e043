import { createRoute, z } from "@hono/zod-openapi";
import {
  createOffering,
  deleteOffering,
  findVisibleOffering,
  type OfferingView,
  searchOfferings,
  updateOffering,
} from "../catalog/offerings";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { iso } from "../http/format";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import {
  errors,
  jsonBody,
  jsonRequest,
  noContent,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";
import { tryToUnits } from "../lib/decimal";
import { NonNegativeDecimal } from "../lib/decimal-schema";

/** False only when both are decimals and `low` > `high` (malformed values are reported by their own schema). */
function ordered(low: string | undefined, high: string | undefined): boolean {
  const a = tryToUnits(low);
  const b = tryToUnits(high);
  return a === null || b === null || a <= b;
}

const Currency = z
  .string()
  .trim()
  .min(1)
  .max(16)
  .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '_' or '-'")
  .openapi({ example: "USD" });
const PaymentMethod = z.string().trim().min(1).max(64).openapi({ example: "credits" });

const PricingSchema = z
  .object({
    base: z.object({ amount: NonNegativeDecimal, currency: Currency }).optional(),
    methods: z.array(PaymentMethod).max(32).optional(),
    negotiable: z.boolean().optional(),
    bounds: z.object({ min: NonNegativeDecimal.optional(), max: NonNegativeDecimal.optional() }).optional(),
  })
  .refine((p) => ordered(p.bounds?.min, p.bounds?.max), {
    message: "bounds.min must not exceed bounds.max",
    path: ["bounds"],
  })
  .openapi("OfferingPricing");

export const OfferingSchema = z
  .object({
    id: z.string(),
    agentId: z.string(),
    agentName: z.string(),
    tenantId: z.string().openapi({ description: "The offering's tenant; another tenant's for federated results" }),
    name: z.string(),
    description: z.string().nullable(),
    pricing: PricingSchema.optional().openapi({ description: "Omitted when the offering has no pricing" }),
    schema: z.record(z.string(), z.unknown()).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Offering");

function formatOffering(o: OfferingView) {
  return {
    id: o.id,
    agentId: o.agentId,
    agentName: o.agentName,
    tenantId: o.tenantId,
    name: o.name,
    description: o.description,
    ...(o.pricing ? { pricing: o.pricing } : {}),
    schema: o.schema ?? null,
    createdAt: iso(o.createdAt),
    updatedAt: iso(o.updatedAt),
  };
}

const OfferingName = z.string().trim().min(1).max(200).openapi({ example: "Contract review" });
const Description = z.string().max(2000).nullable();
const JsonSchema = z.record(z.string(), z.unknown()).nullable();
const CreateOfferingSchema = z
  .object({
    agentId: z.string().min(1).max(128).openapi({ example: "agt_0123456789abcdef0123456789abcdef" }),
    name: OfferingName,
    description: Description.optional(),
    pricing: PricingSchema.nullable().optional(),
    schema: JsonSchema.optional(),
  })
  .openapi("CreateOffering");
const UpdateOfferingSchema = z
  .object({
    name: OfferingName.optional(),
    description: Description.optional(),
    pricing: PricingSchema.nullable().optional(),
    schema: JsonSchema.optional(),
  })
  .openapi("UpdateOffering");

const SearchQuery = PageQuerySchema.extend({
  name: z.string().max(200).optional().openapi({ description: "Case-insensitive substring of the name" }),
  minPrice: NonNegativeDecimal.optional().openapi({ description: "Base price at least this (exact decimal)" }),
  maxPrice: NonNegativeDecimal.optional().openapi({ description: "Base price at most this (exact decimal)" }),
  currency: Currency.optional().openapi({ description: "Base price currency" }),
  paymentMethod: PaymentMethod.optional().openapi({ description: "One of the offering's payment methods" }),
  federated: z
    .enum(["true", "false"])
    .default("true")
    .openapi({ description: "Include offerings of tenants that trust this one" }),
}).refine((q) => ordered(q.minPrice, q.maxPrice), {
  message: "minPrice must not exceed maxPrice",
  path: ["minPrice"],
});
const OfferingParams = TenantParams.extend({
  offeringId: pathParam("offeringId", "ofr_0123456789abcdef0123456789abcdef"),
});
const offeringResource = idResource("offering", "offeringId");

export const offeringRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/offerings",
      tags: ["Discovery"],
      summary: "Search offerings, here and in tenants that trust this one",
      description:
        "Needs `offering:*` read. Filters combine (AND). Price filters compare `pricing.base.amount` exactly and " +
        "skip offerings without a base price. Federated results carry their own `tenantId`.",
      middleware: [requireGrant("offering:*", "read")] as const,
      request: { params: TenantParams, query: SearchQuery },
      responses: {
        200: jsonBody(pageOf(OfferingSchema, "OfferingPage"), "A page of offerings"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { limit, cursor, federated, ...search } = c.req.valid("query");
      const page = await searchOfferings(
        getDb(c.env),
        c.get("tenant").id,
        { ...search, federated: federated === "true" },
        { limit, cursor },
      );
      return c.json(mapPage(page, formatOffering), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/offerings",
      tags: ["Discovery"],
      summary: "Offer an agent's service",
      description: "Needs `offering:*` create. The agent definition must belong to this tenant (404).",
      middleware: [requireGrant("offering:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateOfferingSchema) },
      responses: { 201: jsonBody(OfferingSchema, "The new offering"), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(formatOffering(await createOffering(getDb(c.env), c.get("tenant").id, c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/offerings/{offeringId}",
      tags: ["Discovery"],
      summary: "Get an offering (this tenant's or a trusting tenant's)",
      middleware: [requireGrant(offeringResource, "read")] as const,
      request: { params: OfferingParams },
      responses: { 200: jsonBody(OfferingSchema, "The offering"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const row = await findVisibleOffering(getDb(c.env), c.get("tenant").id, c.req.valid("param").offeringId);
      return c.json(formatOffering(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/offerings/{offeringId}",
      tags: ["Discovery"],
      summary: "Change an offering of this tenant",
      description: "Needs `offering:<id>` manage. `pricing: null` removes the pricing.",
      middleware: [requireGrant(offeringResource, "manage")] as const,
      request: { params: OfferingParams, ...jsonRequest(UpdateOfferingSchema) },
      responses: { 200: jsonBody(OfferingSchema, "The updated offering"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { offeringId } = c.req.valid("param");
      const row = await updateOffering(getDb(c.env), c.get("tenant").id, offeringId, c.req.valid("json"));
      return c.json(formatOffering(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/offerings/{offeringId}",
      tags: ["Discovery"],
      summary: "Withdraw an offering of this tenant",
      description: "Needs `offering:<id>` manage.",
      middleware: [requireGrant(offeringResource, "manage")] as const,
      request: { params: OfferingParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      await deleteOffering(getDb(c.env), c.get("tenant").id, c.req.valid("param").offeringId);
      return c.body(null, 204);
    },
  );
