/**
 * What the sidecar is told about an instance's authority (the `deploy`, `grants.update` and
 * `sources.update` frames): its grants in wire form, and its credentials resolved into inference sources.
 * Shared by launch and by the instance object when it re-sends them, so it imports neither the routes'
 * schemas nor zod (the instance object's Worker stays small, docs/events.md).
 */
import { eq } from "drizzle-orm";
import { collectGrants } from "../authz/grant-store";
import type { GrantRule } from "../authz/types";
import { type CredentialOutcome, resolveCredentials } from "../catalog/credential-resolution";
import type { Db } from "../db/client";
import { agent, agentSession, type CredentialRequirement } from "../db/schema";
import { ApiError } from "../errors";
import type { SecretBox } from "../secrets/encryption";
import type { HarnessConfig, InferenceSource, WireGrantRule } from "./protocol";

/** Maps a failed credential outcome to the launch's 409. */
function credentialFailure(outcome: Exclude<CredentialOutcome, { outcome: "ok" | "skipped" }>): ApiError {
  return new ApiError(409, outcome.outcome, outcome.message);
}

export function toWireGrants(rules: readonly GrantRule[]): WireGrantRule[] {
  return rules.map((g) => ({
    id: g.id,
    resource: g.resource,
    action: g.action,
    effect: g.effect,
    conditions: (g.conditions as Record<string, unknown> | null) ?? null,
    expiresAt: g.expiresAt === null || g.expiresAt === undefined ? null : new Date(g.expiresAt).toISOString(),
  }));
}

type SourceInput = {
  tenantId: string;
  requirements: CredentialRequirement[];
  creatorPrincipalId: string;
  invokerPrincipalId: string;
  model: string;
  now: Date;
};

/** The usable credentials as sources; `strict`: a requirement that fails throws, else it is left out. */
async function sourcesOf(db: Db, secrets: SecretBox, input: SourceInput, strict: boolean): Promise<InferenceSource[]> {
  const outcomes = await resolveCredentials(db, {
    tenantId: input.tenantId,
    requirements: input.requirements,
    creatorPrincipalId: input.creatorPrincipalId,
    invokerPrincipalId: input.invokerPrincipalId,
    secrets,
    now: input.now,
  });
  const sources: InferenceSource[] = [];
  for (const outcome of outcomes) {
    if (outcome.outcome === "skipped") continue;
    if (outcome.outcome !== "ok") {
      if (strict) throw credentialFailure(outcome);
      continue;
    }
    sources.push({
      id: `${outcome.provider.plugin}:${input.model}`,
      provider: outcome.provider.plugin,
      baseURL: outcome.provider.baseURL,
      apiKey: outcome.secret,
      model: input.model,
      credentialId: outcome.credentialId,
    });
  }
  return sources;
}

/** Resolves the definition's credentials into inference sources (at launch: any failure is a 409). */
export function resolveSources(db: Db, secrets: SecretBox, input: SourceInput): Promise<InferenceSource[]> {
  return sourcesOf(db, secrets, input, true);
}

/**
 * A running instance's sources as they are now: its definition's requirements resolved again for its
 * invoker, leaving out any that no longer resolve (a credential revoked, expired or deleted).
 */
export async function resolveCurrentSources(
  db: Db,
  secrets: SecretBox,
  instance: { tenantId: string; config: HarnessConfig },
): Promise<InferenceSource[]> {
  const { config } = instance;
  const [definition, session] = await Promise.all([
    db.query.agent.findFirst({ where: eq(agent.id, config.agentId) }),
    db.query.agentSession.findFirst({ where: eq(agentSession.id, config.sessionId) }),
  ]);
  if (!definition || !session) return [];
  const model = String((definition.modelConfig as { defaultModel?: string } | null)?.defaultModel ?? "");
  return sourcesOf(
    db,
    secrets,
    {
      tenantId: instance.tenantId,
      requirements: definition.credentialRequirements ?? [],
      creatorPrincipalId: definition.creatorPrincipalId,
      invokerPrincipalId: session.principalId,
      model,
      now: new Date(),
    },
    false,
  );
}

/** Grants as they are now, and the sources re-resolved (null when that failed: the sidecar keeps its own). */
export async function currentGrantsAndSources(
  db: Db,
  secrets: SecretBox,
  instance: { tenantId: string; config: HarnessConfig },
): Promise<{ grants: WireGrantRule[]; sources: InferenceSource[] | null }> {
  const grants = toWireGrants(await collectGrants(db, instance.tenantId, instance.config.principalId));
  let sources: InferenceSource[] | null = null;
  try {
    sources = await resolveCurrentSources(db, secrets, instance);
  } catch (err) {
    console.error("re-resolving sources failed; keeping the sidecar's", err);
  }
  return { grants, sources };
}
