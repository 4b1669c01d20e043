/**
 * Launching an instance (`POST …/agents/instances`): everything is checked and computed in memory first —
 * the definition, credentials, delegated grants — then one D1 batch writes the principal, its roles and
 * grants, the session, the instance and the creator's grant. Nothing is written when any check fails.
 */
import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { writeDeployTree } from "../agent-state/deploy-tree";
import { mintAgentToken } from "../auth/agent-tokens";
import { defaultConditionRegistry } from "../authz/conditions";
import { evaluateGrants } from "../authz/evaluate";
import { collectGrants } from "../authz/grant-store";
import { assertValidConditions } from "../authz/grants";
import type { GrantRule } from "../authz/types";
import { modelsOf } from "../catalog/models";
import type { ModelPricing } from "../catalog/pricing";
import { findWallet, getDefaultWallet, type WalletRow } from "../catalog/wallets";
import type { Db } from "../db/client";
import {
  agent,
  agentInstance,
  agentRole,
  agentSession,
  type CredentialRequirement,
  credential,
  type GrantRequirement,
  grant,
  principal,
  principalRole,
  provider,
  role,
} from "../db/schema";
import { ApiError, forbidden, notFound } from "../errors";
import { bytesToHex } from "../lib/hex";
import { newId } from "../lib/ids";
import { type SecretBox, secretBox } from "../secrets/encryption";
import { hubSigningKey } from "../secrets/hub-signing-key";
import type { TenantRow } from "../tenancy/tenants";
import { hubLog } from "./instance-logs";
import { markLaunchFailed } from "./instances";
import type { HarnessConfig, InferenceSource } from "./protocol";
import { unwrap } from "./rpc-result";
import { resolveSources, toWireGrants } from "./sidecar-config";
import { pickSidecar } from "./sidecars";
import { instanceObject } from "./stubs";

export type InvokerGrant = {
  resource: string;
  action: string;
  effect?: "allow" | "deny" | "ask" | undefined;
  conditions?: Record<string, unknown> | null | undefined;
};

export type LaunchInput = {
  tenant: TenantRow;
  agentId: string;
  invokerPrincipalId: string;
  invokerGrants: readonly InvokerGrant[];
  /** The wallet model calls are charged to; the tenant's default wallet when absent. */
  walletId?: string | undefined;
  /** Whether the invoker may spend from a wallet (`wallet:<id>` write). */
  mayCharge: (walletId: string) => boolean;
  secrets: SecretBox;
  sidecarId: string | null;
  now?: Date;
};

export type PreparedLaunch = {
  instanceId: string;
  sessionId: string;
  principalId: string;
  address: string;
  agentName: string;
  config: HarnessConfig;
  walletId: string;
  /** What each source's model costs (per million tokens), at the catalog's price at launch. */
  pricing: Record<string, ModelPricing | null>;
  statements: ReturnType<typeof buildStatements>;
};

const DAY_MS = 24 * 60 * 60 * 1000;
const notLaunchable = (message: string) => new ApiError(409, "not_launchable", message);

const CredentialRequirementsSchema = z.array(
  z.object({
    providerName: z.string().min(1),
    source: z.enum(["tenant", "creator", "invoker"]),
    scopes: z.array(z.string()).optional(),
    name: z.string().optional(),
  }),
);
const ModelConfigSchema = z.object({ defaultModel: z.string().min(1) }).passthrough();
const GrantRequirementsSchema = z.array(
  z.object({
    resource: z.string().min(1),
    action: z.string().min(1),
    effect: z.enum(["allow", "deny", "ask"]).optional(),
    source: z.enum(["creator", "invoker"]),
    conditions: z.record(z.string(), z.unknown()).nullable().optional(),
  }),
);

/** One thing a definition lacks to be launched (`details.issues` of a 409 `not_launchable`). */
export type LaunchIssue = { path: string; code: "missing" | "invalid"; message: string };

type LaunchFields = {
  systemPrompt: string | null;
  modelConfig: Record<string, unknown> | null;
  credentialRequirements: unknown;
  grantRequirements: unknown;
};

/**
 * Everything a definition lacks to be launched, all at once (empty when it can be launched): a non-blank
 * `systemPrompt`, `modelConfig.defaultModel`, at least one credential requirement, and well-formed
 * requirements (docs/agents.md). Whether the credentials exist is checked after, at launch.
 */
export function launchIssues(definition: LaunchFields): LaunchIssue[] {
  const found: LaunchIssue[] = [];
  const invalid = (field: string, error: z.ZodError) => {
    for (const i of error.issues)
      found.push({ path: [field, ...i.path].join("."), code: "invalid", message: i.message });
  };
  if (!definition.systemPrompt?.trim()) {
    found.push({ path: "systemPrompt", code: "missing", message: "the instructions the agent runs with (not blank)" });
  }
  const defaultModel = definition.modelConfig?.defaultModel;
  if (defaultModel === undefined || defaultModel === null) {
    found.push({
      path: "modelConfig.defaultModel",
      code: "missing",
      message: 'the model the agent calls, as its provider names it (e.g. "gpt-4o-mini")',
    });
  } else {
    const model = ModelConfigSchema.safeParse(definition.modelConfig);
    if (!model.success) invalid("modelConfig", model.error);
  }
  const credentials = definition.credentialRequirements;
  if (!Array.isArray(credentials) || credentials.length === 0) {
    found.push({
      path: "credentialRequirements",
      code: "missing",
      message: "at least one: the provider (and whose credential) the model calls go through",
    });
  } else {
    const parsed = CredentialRequirementsSchema.safeParse(credentials);
    if (!parsed.success) invalid("credentialRequirements", parsed.error);
  }
  const grants = GrantRequirementsSchema.safeParse(definition.grantRequirements ?? []);
  if (!grants.success) invalid("grantRequirements", grants.error);
  return found;
}

/** The 409 `not_launchable` naming every problem at once. */
function notLaunchableDefinition(found: LaunchIssue[]): ApiError {
  const listed = found.map((i) => (i.code === "missing" ? `${i.path} is missing` : `${i.path}: ${i.message}`));
  return new ApiError(409, "not_launchable", `The agent definition cannot be launched: ${listed.join("; ")}`, {
    issues: found,
  });
}

type Materialized = {
  resource: string;
  action: string;
  effect: "allow" | "deny" | "ask";
  conditions: Record<string, unknown> | null;
  origin: "creator" | "invoker";
  expiresAt: Date | null;
};

/** Launch-time delegation: a source may only hand on what it is allowed itself. */
export function delegateGrants(input: {
  requirements: readonly GrantRequirement[];
  invokerGrants: readonly InvokerGrant[];
  creatorGrants: readonly GrantRule[];
  invokerRules: readonly GrantRule[];
  now: Date;
  tenantId: string;
  invokerPrincipalId: string;
  creatorPrincipalId: string;
}): Materialized[] {
  const delegatable = input.invokerRules.filter((g) => g.origin !== "invoker");
  const at = input.now.getTime();
  const invokerCtx = { now: at, tenantId: input.tenantId, principalId: input.invokerPrincipalId };
  const creatorCtx = { now: at, tenantId: input.tenantId, principalId: input.creatorPrincipalId };
  const out: Materialized[] = [];
  const fromInvoker = (r: InvokerGrant) => {
    if (!evaluateGrants(delegatable, r.resource, r.action, invokerCtx, defaultConditionRegistry).allowed) {
      throw new ApiError(403, "insufficient_grants", `Invoker lacks authority for ${r.action} on ${r.resource}`);
    }
    out.push({
      resource: r.resource,
      action: r.action,
      effect: r.effect ?? "allow",
      conditions: r.conditions ?? null,
      origin: "invoker",
      expiresAt: new Date(input.now.getTime() + DAY_MS),
    });
  };
  for (const r of input.requirements) {
    if (r.source === "creator") {
      // No condition registry: a conditional grant of the creator does not count.
      if (!evaluateGrants(input.creatorGrants, r.resource, r.action, creatorCtx).allowed) {
        throw new ApiError(
          403,
          "insufficient_grants",
          `Creator lacks authority to delegate ${r.action} on ${r.resource}`,
        );
      }
      out.push({
        resource: r.resource,
        action: r.action,
        effect: r.effect ?? "allow",
        conditions: (r.conditions as Record<string, unknown> | null | undefined) ?? null,
        origin: "creator",
        expiresAt: null,
      });
    } else if (r.source === "invoker") {
      fromInvoker(r as InvokerGrant);
    } else {
      throw notLaunchable(`Unknown grant requirement source "${(r as { source: string }).source}"`);
    }
  }
  for (const r of input.invokerGrants) fromInvoker(r);
  return out;
}

function buildStatements(
  db: Db,
  rows: {
    tenantId: string;
    agentId: string;
    instanceId: string;
    sessionId: string;
    principalId: string;
    invokerPrincipalId: string;
    creatorPrincipalId: string;
    address: string;
    roleIds: string[];
    grants: Materialized[];
    sidecarId: string | null;
    walletId: string;
    apiTokenHash: Uint8Array;
    now: Date;
  },
) {
  const { now } = rows;
  return [
    db.insert(principal).values({
      id: rows.principalId,
      tenantId: rows.tenantId,
      kind: "agent",
      refId: rows.instanceId,
      status: "active",
      createdAt: now,
      updatedAt: now,
    }),
    ...rows.roleIds.map((roleId) => db.insert(principalRole).values({ principalId: rows.principalId, roleId })),
    ...rows.grants.map((g) =>
      db.insert(grant).values({
        id: newId("grant"),
        tenantId: rows.tenantId,
        principalId: rows.principalId,
        resource: g.resource,
        action: g.action,
        effect: g.effect,
        conditions: g.conditions as never,
        origin: g.origin,
        expiresAt: g.expiresAt,
        createdAt: now,
        updatedAt: now,
      }),
    ),
    db.insert(agentSession).values({
      id: rows.sessionId,
      tenantId: rows.tenantId,
      agentId: rows.agentId,
      principalId: rows.invokerPrincipalId,
      status: "active",
      createdAt: now,
      updatedAt: now,
    }),
    db.insert(agentInstance).values({
      id: rows.instanceId,
      agentId: rows.agentId,
      tenantId: rows.tenantId,
      principalId: rows.principalId,
      address: rows.address,
      sessionId: rows.sessionId,
      status: "deployed",
      sidecarId: rows.sidecarId,
      walletId: rows.walletId,
      apiTokenHash: rows.apiTokenHash,
      createdAt: now,
      updatedAt: now,
    }),
    // The definition's creator may read the new instance's state.
    db.insert(grant).values({
      id: newId("grant"),
      tenantId: rows.tenantId,
      principalId: rows.creatorPrincipalId,
      resource: `agent-state:${rows.instanceId}`,
      action: "read",
      effect: "allow",
      origin: "creator",
      createdAt: now,
      updatedAt: now,
    }),
  ];
}

/**
 * The wallet a launch charges: the one it names (404 when not the tenant's), else the tenant's default
 * (409 `wallet_required` when there is none); the invoker must be allowed to spend from it (403).
 */
async function walletToCharge(db: Db, input: LaunchInput): Promise<WalletRow> {
  const chosen = input.walletId
    ? await findWallet(db, input.tenant.id, input.walletId)
    : await getDefaultWallet(db, input.tenant.id);
  if (!chosen) {
    throw new ApiError(
      409,
      "wallet_required",
      "This tenant has no default wallet: name one with walletId, or create one (POST …/wallets)",
    );
  }
  if (!input.mayCharge(chosen.id)) {
    throw forbidden(`Launching charges wallet ${chosen.id}, which needs write on wallet:${chosen.id}`);
  }
  return chosen;
}

/** Each source's model price from its provider's catalog (`metadata.models`), or null when unpriced. */
async function priceSources(db: Db, sources: readonly InferenceSource[]): Promise<Record<string, ModelPricing | null>> {
  const credentialIds = [...new Set(sources.flatMap((s) => (s.credentialId ? [s.credentialId] : [])))];
  const rows =
    credentialIds.length === 0
      ? []
      : await db
          .select({
            credentialId: credential.id,
            providerId: provider.id,
            name: provider.name,
            metadata: provider.metadata,
          })
          .from(credential)
          .innerJoin(provider, eq(provider.id, credential.providerId))
          .where(inArray(credential.id, credentialIds));
  const byCredential = new Map(rows.map((r) => [r.credentialId, r]));
  const pricing: Record<string, ModelPricing | null> = {};
  for (const source of sources) {
    const row = source.credentialId ? byCredential.get(source.credentialId) : undefined;
    const model = row
      ? modelsOf({ id: row.providerId, name: row.name, metadata: row.metadata }).find((m) => m.id === source.model)
      : undefined;
    pricing[source.id] = model?.pricing ?? null;
  }
  return pricing;
}

/** Checks everything and builds the batch; a failed check throws its `ApiError`. Writes nothing. */
export async function prepareLaunch(db: Db, input: LaunchInput): Promise<PreparedLaunch> {
  const now = input.now ?? new Date();
  const tenantId = input.tenant.id;
  const definition = await db.query.agent.findFirst({
    where: and(eq(agent.id, input.agentId), eq(agent.tenantId, tenantId)),
  });
  if (!definition) throw notFound("Agent not found");
  if (definition.status !== "deployed") {
    throw new ApiError(409, "conflict", `Agent is not in a launchable state (status: ${definition.status})`);
  }
  const found = launchIssues(definition);
  const requirements = CredentialRequirementsSchema.safeParse(definition.credentialRequirements);
  const modelConfig = ModelConfigSchema.safeParse(definition.modelConfig);
  const grantRequirements = GrantRequirementsSchema.safeParse(definition.grantRequirements ?? []);
  const { systemPrompt } = definition;
  if (
    found.length > 0 ||
    !systemPrompt ||
    !requirements.success ||
    !modelConfig.success ||
    !grantRequirements.success
  ) {
    throw notLaunchableDefinition(found);
  }

  const instanceId = newId("instance");
  const address = `${instanceId}@${input.tenant.domain}`;
  const sources = await resolveSources(db, input.secrets, {
    tenantId,
    requirements: requirements.data as CredentialRequirement[],
    creatorPrincipalId: definition.creatorPrincipalId,
    invokerPrincipalId: input.invokerPrincipalId,
    model: modelConfig.data.defaultModel,
    now,
  });
  const defaultSource = sources[0];
  if (!defaultSource) {
    throw notLaunchable("None of the agent's credential requirements resolved to a usable credential");
  }
  const chargedWallet = await walletToCharge(db, input);
  const pricing = await priceSources(db, sources);
  for (const [sourceId, price] of Object.entries(pricing)) {
    if (price?.currency && price.currency !== chargedWallet.currency) {
      throw new ApiError(
        409,
        "currency_mismatch",
        `The model of ${sourceId} is priced in ${price.currency}; wallet ${chargedWallet.id} holds ${chargedWallet.currency}`,
      );
    }
  }

  for (const g of input.invokerGrants) assertValidConditions(g.conditions as never);
  const [creatorGrants, invokerRules] = await Promise.all([
    collectGrants(db, tenantId, definition.creatorPrincipalId, now),
    collectGrants(db, tenantId, input.invokerPrincipalId, now),
  ]);
  const materialized = delegateGrants({
    requirements: grantRequirements.data as GrantRequirement[],
    invokerGrants: input.invokerGrants,
    creatorGrants,
    invokerRules,
    now,
    tenantId,
    invokerPrincipalId: input.invokerPrincipalId,
    creatorPrincipalId: definition.creatorPrincipalId,
  });

  const roleRows = await db
    .select({ id: role.id })
    .from(agentRole)
    .innerJoin(role, eq(role.id, agentRole.roleId))
    .where(and(eq(agentRole.agentId, definition.id), eq(role.tenantId, tenantId)));
  const roleIds = roleRows.map((r) => r.id);

  const sessionId = newId("session");
  const principalId = newId("principal");
  const apiToken = await mintAgentToken();
  const statements = buildStatements(db, {
    tenantId,
    agentId: definition.id,
    instanceId,
    sessionId,
    principalId,
    invokerPrincipalId: input.invokerPrincipalId,
    creatorPrincipalId: definition.creatorPrincipalId,
    address,
    roleIds,
    grants: materialized,
    sidecarId: input.sidecarId,
    walletId: chargedWallet.id,
    apiTokenHash: apiToken.hash,
    now,
  });
  const config: HarnessConfig = {
    instanceId,
    sessionId,
    agentId: definition.id,
    tenantId,
    principalId,
    agentAddress: address,
    systemPrompt,
    tools: [],
    apiToken: apiToken.secret,
    // Filled from D1 once the launch is committed (the grant rows have their ids then).
    grants: [],
    sources,
    defaultSource: defaultSource.id,
  };
  return {
    instanceId,
    sessionId,
    principalId,
    address,
    agentName: definition.name,
    config,
    walletId: chargedWallet.id,
    pricing,
    statements,
  };
}

export type LaunchResult = { instanceId: string };

/**
 * The whole launch: pick a sidecar, check and write (one batch), then hand the instance to its Durable
 * Object, which waits until the sidecar has deployed and started it. A launch the sidecar does not start
 * is recorded as `error` and answered 502.
 */
export async function launchInstance(
  env: Env,
  db: Db,
  input: Omit<LaunchInput, "secrets" | "sidecarId"> & { timeoutMs?: number },
): Promise<LaunchResult> {
  const now = input.now ?? new Date();
  const sidecar = await pickSidecar(db, input.tenant.id, now);
  const prepared = await prepareLaunch(db, { ...input, secrets: secretBox(env), sidecarId: sidecar?.id ?? null, now });
  if (!sidecar) {
    throw new ApiError(502, "sidecar_unavailable", "No sidecar of this tenant is online to run the instance");
  }
  // The deploy tree is the definition's (the next launch rewrites it): written before the instance, so a
  // launch refused for its attachments writes nothing of the instance.
  const deploy = await writeDeployTree(env, db, {
    tenantId: input.tenant.id,
    agentId: prepared.config.agentId,
    systemPrompt: prepared.config.systemPrompt,
    now,
  });
  await db.batch(prepared.statements as unknown as Parameters<typeof db.batch>[0]);
  const grants = toWireGrants(await collectGrants(db, input.tenant.id, prepared.principalId, now));
  const logged = { tenantId: input.tenant.id, instanceId: prepared.instanceId, config: prepared.config };
  await hubLog(env, logged, "info", `Launching on sidecar ${sidecar.id}`, {
    sidecarId: sidecar.id,
    deployCommit: deploy.deployCommit,
    walletId: prepared.walletId,
  });
  const outcome = await instanceObject(env, prepared.instanceId).launch(
    {
      config: { ...prepared.config, systemPrompt: deploy.systemPrompt, grants },
      deployCommit: deploy.deployCommit,
      packs: deploy.packs,
      tenantId: input.tenant.id,
      instanceId: prepared.instanceId,
      sidecarId: sidecar.id,
      hubPublicKey: bytesToHex((await hubSigningKey(env.SECRETS_KEY)).publicKey),
      walletId: prepared.walletId,
      pricing: prepared.pricing,
    },
    input.timeoutMs,
  );
  if (!outcome.ok) {
    await markLaunchFailed(db, prepared.instanceId, prepared.principalId, prepared.sessionId, outcome.message);
    await hubLog(env, logged, "error", `Launch failed: ${outcome.message}`, { code: outcome.code });
    unwrap(outcome);
  }
  return { instanceId: prepared.instanceId };
}
