/**
 * The model catalog: models are declared in their provider's `metadata.models`, with pricing and limits.
 * A tenant's catalog is the models of every provider it sees (its own and its ancestors', shadowing
 * applied). The metadata is validated when a provider is written, so reading it back cannot fail.
 */
import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { defaultConditionRegistry } from "../authz/conditions";
import { evaluateGrants } from "../authz/evaluate";
import { collectGrants } from "../authz/grant-store";
import type { Db } from "../db/client";
import { principal, provider } from "../db/schema";
import { forbidden, notFound } from "../errors";
import { normalizeDecimal } from "../lib/decimal";
import { NonNegativeDecimal } from "../lib/decimal-schema";
import { tenantChain, visibleProviders } from "./providers";

const Price = NonNegativeDecimal.transform(normalizeDecimal);
const TokenCount = z.number().int().positive().max(1_000_000_000);

export const ModelPricingSchema = z
  .object({
    input: Price.optional(),
    output: Price.optional(),
    cacheRead: Price.optional(),
    cacheWrite: Price.optional(),
    thinking: Price.optional(),
    currency: z.string().trim().min(1).max(16).optional().openapi({ example: "USD" }),
  })
  .openapi({
    description:
      "Prices per million tokens, exact decimal strings. Cache reads and writes cost the input price and " +
      "thinking the output price unless priced themselves.",
  });

export const ModelLimitsSchema = z
  .object({ context: TokenCount.optional(), output: TokenCount.optional() })
  .openapi({ description: "Token limits: context window and maximum output" });

/** One entry of a provider's `metadata.models`. */
export const ProviderModelSchema = z.object({
  id: z.string().trim().min(1).max(200).openapi({ example: "gpt-4o" }),
  name: z.string().trim().min(1).max(200).optional(),
  description: z.string().max(2000).optional(),
  capabilities: z
    .array(z.string().min(1).max(64))
    .max(50)
    .optional()
    .openapi({ example: ["tools", "vision"] }),
  pricing: ModelPricingSchema.optional(),
  limits: ModelLimitsSchema.optional(),
});

export type ProviderModel = z.infer<typeof ProviderModelSchema>;

/**
 * Provider metadata: free-form, except `baseURL` (needed to use the provider for inference) and
 * `models` (the catalog), which are checked.
 */
export const ProviderMetadataSchema = z
  .looseObject({
    baseURL: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional()
      .openapi({ example: "https://api.openai.com/v1" }),
    models: z
      .array(ProviderModelSchema)
      .max(500)
      .refine((models) => new Set(models.map((m) => m.id)).size === models.length, "model ids must be unique")
      .optional(),
  })
  .openapi("ProviderMetadata");

export type ModelInfo = {
  id: string;
  providerId: string;
  providerName: string;
  name: string;
  description?: string;
  capabilities?: string[];
  pricing?: ProviderModel["pricing"];
  limits?: ProviderModel["limits"];
};

/** The models a provider row declares (entries that do not parse are left out, never a 500). */
export function modelsOf(row: { id: string; name: string; metadata: Record<string, unknown> | null }): ModelInfo[] {
  const declared = row.metadata?.models;
  if (!Array.isArray(declared)) return [];
  const out: ModelInfo[] = [];
  for (const entry of declared) {
    const parsed = ProviderModelSchema.safeParse(entry);
    if (!parsed.success) continue;
    const m = parsed.data;
    out.push({
      id: m.id,
      providerId: row.id,
      providerName: row.name,
      name: m.name ?? m.id,
      ...(m.description !== undefined ? { description: m.description } : {}),
      ...(m.capabilities !== undefined ? { capabilities: m.capabilities } : {}),
      ...(m.pricing !== undefined ? { pricing: m.pricing } : {}),
      ...(m.limits !== undefined ? { limits: m.limits } : {}),
    });
  }
  return out;
}

/**
 * The models of the providers visible from each tenant, de-duplicated by (provider, model) when two
 * tenants inherit the same provider. Sorted by provider name, model id, then provider id.
 */
export async function listModels(db: Db, tenantIds: string[]): Promise<ModelInfo[]> {
  const rows = new Map<string, typeof provider.$inferSelect>();
  for (const tenantId of new Set(tenantIds)) {
    const chain = await tenantChain(db, tenantId);
    if (chain.length === 0) continue;
    const visible = await db.select().from(provider).where(visibleProviders(db, chain));
    for (const row of visible) rows.set(row.id, row);
  }
  const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows.values()]
    .flatMap(modelsOf)
    .sort(
      (a, b) => compare(a.providerName, b.providerName) || compare(a.id, b.id) || compare(a.providerId, b.providerId),
    );
}

/**
 * The tenants whose catalogs a user may read: with `tenantId`, that tenant (404 unless an active member,
 * exactly like the tenant routes; 403 without `provider:*` read); without it, every tenant where the
 * user is an active member holding `provider:*` read.
 */
export async function catalogTenantsOf(
  db: Db,
  userId: string,
  options: { tenantId?: string | undefined; now: number; ip: string | null },
): Promise<string[]> {
  const memberships = await db
    .select({ principalId: principal.id, tenantId: principal.tenantId })
    .from(principal)
    .where(
      and(
        eq(principal.kind, "user"),
        eq(principal.refId, userId),
        eq(principal.status, "active"),
        options.tenantId === undefined ? undefined : eq(principal.tenantId, options.tenantId),
      ),
    );
  if (options.tenantId !== undefined && memberships.length === 0) throw notFound("Tenant not found");
  const readable: string[] = [];
  for (const m of memberships) {
    const grants = await collectGrants(db, m.tenantId, m.principalId, new Date(options.now));
    const ctx = { now: options.now, principalId: m.principalId, tenantId: m.tenantId, ip: options.ip };
    if (evaluateGrants(grants, "provider:*", "read", ctx, defaultConditionRegistry).allowed) readable.push(m.tenantId);
  }
  if (options.tenantId !== undefined && readable.length === 0) throw forbidden();
  return readable;
}
