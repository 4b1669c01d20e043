/**
 * Credential resolution: for each of an agent's credential requirements, find the one credential that
 * satisfies it, decrypt its secret, or say precisely why not. The instance launch calls this; each outcome
 * name is also the error code the launch answers with (409) when it is fatal.
 *
 * Per requirement:
 * 1. `source: creator` without a creator principal, or `invoker` without an invoker: `skipped`.
 * 2. The provider is found by name along the tenant chain (the tenant, its parent, …): the nearest wins,
 *    so a child's provider shadows its parent's. None: `provider_missing`. Its `metadata.baseURL` must be
 *    a string (needed for inference), else `provider_misconfigured`.
 * 3. The chain is walked again, nearest first. At each tenant the candidates are the credentials of that
 *    exact provider row, owned as the source says (`tenant`: no principal; `creator`/`invoker`: that
 *    principal), with the requirement's `name` if any, whose scopes include every required scope.
 *    Of those, the usable ones (status `active` and not past `expiresAt`) decide: exactly one → `ok`;
 *    more than one → `credential_error` (ambiguous); none → the parent.
 * 4. Nothing usable anywhere: if a candidate was found but is unusable, the nearest one explains it
 *    (`credential_expired`, `credential_revoked`, or `credential_error` for status `error`); otherwise
 *    `credential_missing`.
 * 5. A requirement marked `optional: true` that ends in `provider_missing`, `credential_missing`,
 *    `credential_expired` or `credential_revoked` is `skipped` instead.
 *
 * Because the provider row is fixed in step 2, a parent's credential only counts for a requirement if it
 * belongs to that same provider row: once a child shadows a provider, the parent's credentials for the
 * shadowed one no longer apply in the child.
 */
import { and, eq, isNull, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { type CredentialRequirement, credential } from "../db/schema";
import { type SecretBox, SecretDecryptionError, secretContext } from "../secrets/encryption";
import { chainDepth, inChain, resolveProviderByName, tenantChain } from "./providers";

export type ResolvableRequirement = CredentialRequirement & {
  /** When true, an unmet requirement is `skipped` rather than fatal. */
  optional?: boolean;
};

export type ResolveCredentialsInput = {
  tenantId: string;
  requirements: readonly ResolvableRequirement[];
  /** The agent definition's creator principal (source `creator`). */
  creatorPrincipalId?: string | null | undefined;
  /** The principal launching the instance (source `invoker`). */
  invokerPrincipalId?: string | null | undefined;
  secrets: SecretBox;
  now?: Date;
};

export type ResolvedProvider = {
  id: string;
  tenantId: string;
  name: string;
  plugin: string;
  baseURL: string;
  metadata: Record<string, unknown>;
};

export type SkipReason =
  | "no_creator"
  | "no_invoker"
  | "provider_missing"
  | "credential_missing"
  | "credential_expired"
  | "credential_revoked";

export type CredentialOutcome =
  | {
      outcome: "ok";
      requirement: ResolvableRequirement;
      provider: ResolvedProvider;
      credentialId: string;
      /** The tenant the credential belongs to (the launching tenant or an ancestor). */
      credentialTenantId: string;
      secret: string;
      scopes: string[];
      expiresAt: Date | null;
    }
  | { outcome: "skipped"; requirement: ResolvableRequirement; reason: SkipReason; message: string }
  | { outcome: "provider_missing"; requirement: ResolvableRequirement; message: string }
  | { outcome: "provider_misconfigured"; requirement: ResolvableRequirement; providerId: string; message: string }
  | { outcome: "credential_missing"; requirement: ResolvableRequirement; providerId: string; message: string }
  | {
      outcome: "credential_expired" | "credential_revoked";
      requirement: ResolvableRequirement;
      providerId: string;
      credentialId: string;
      message: string;
    }
  | {
      outcome: "credential_error";
      requirement: ResolvableRequirement;
      providerId: string;
      /** `ambiguous`: several usable credentials at the same level; `status_error`: the credential is in
       * status `error`; `undecryptable`: its ciphertext does not open with the current key. */
      reason: "ambiguous" | "status_error" | "undecryptable";
      credentialIds: string[];
      message: string;
    };

export type CredentialOutcomeName = CredentialOutcome["outcome"];

type CredentialRow = typeof credential.$inferSelect;

const describe = (r: ResolvableRequirement) =>
  `provider "${r.providerName}" (source: ${r.source}${r.name ? `, name: ${r.name}` : ""})`;

function unusableReason(row: CredentialRow, now: Date): "expired" | "revoked" | "error" | null {
  if (row.status === "revoked") return "revoked";
  if (row.status === "error") return "error";
  if (row.status === "expired") return "expired";
  if (row.expiresAt && row.expiresAt.getTime() <= now.getTime()) return "expired";
  return null;
}

/** Resolves every requirement, in order; one outcome per requirement. Never throws for a data problem. */
export async function resolveCredentials(db: Db, input: ResolveCredentialsInput): Promise<CredentialOutcome[]> {
  const now = input.now ?? new Date();
  const chain = await tenantChain(db, input.tenantId);
  const out: CredentialOutcome[] = [];
  for (const requirement of input.requirements) {
    const outcome = await resolveOne(db, input, chain, requirement, now);
    out.push(softenOptional(outcome));
  }
  return out;
}

function softenOptional(outcome: CredentialOutcome): CredentialOutcome {
  if (!outcome.requirement.optional) return outcome;
  switch (outcome.outcome) {
    case "provider_missing":
    case "credential_missing":
    case "credential_expired":
    case "credential_revoked":
      return {
        outcome: "skipped",
        requirement: outcome.requirement,
        reason: outcome.outcome,
        message: `Optional requirement unmet: ${outcome.message}`,
      };
    default:
      return outcome;
  }
}

async function resolveOne(
  db: Db,
  input: ResolveCredentialsInput,
  chain: string[],
  requirement: ResolvableRequirement,
  now: Date,
): Promise<CredentialOutcome> {
  let owner: SQL;
  if (requirement.source === "tenant") owner = isNull(credential.principalId);
  else {
    const principalId = requirement.source === "creator" ? input.creatorPrincipalId : input.invokerPrincipalId;
    if (!principalId) {
      const reason = requirement.source === "creator" ? "no_creator" : "no_invoker";
      return { outcome: "skipped", requirement, reason, message: `No ${requirement.source} principal to resolve for` };
    }
    owner = eq(credential.principalId, principalId);
  }

  const found = await resolveProviderByName(db, chain, requirement.providerName);
  if (!found) {
    return {
      outcome: "provider_missing",
      requirement,
      message: `No provider named "${requirement.providerName}" in this tenant or its ancestors`,
    };
  }
  const metadata = found.metadata ?? {};
  const baseURL = metadata.baseURL;
  if (typeof baseURL !== "string" || baseURL.length === 0) {
    return {
      outcome: "provider_misconfigured",
      requirement,
      providerId: found.id,
      message: `Provider "${found.name}" has no metadata.baseURL`,
    };
  }
  const provider: ResolvedProvider = {
    id: found.id,
    tenantId: found.tenantId,
    name: found.name,
    plugin: found.plugin,
    baseURL,
    metadata,
  };

  const rows = await db
    .select()
    .from(credential)
    .where(
      and(
        eq(credential.providerId, found.id),
        inChain(credential.tenantId, chain),
        owner,
        requirement.name ? eq(credential.name, requirement.name) : undefined,
      ),
    )
    .orderBy(chainDepth(credential.tenantId, chain), credential.createdAt, credential.id);
  const required = requirement.scopes ?? [];
  const candidates = rows.filter((row) => required.every((scope) => (row.scopes ?? []).includes(scope)));

  let firstUnusable: { row: CredentialRow; reason: "expired" | "revoked" | "error" } | null = null;
  for (const tenantId of chain) {
    const here = candidates.filter((row) => row.tenantId === tenantId);
    const usable = here.filter((row) => unusableReason(row, now) === null);
    if (usable.length > 1) {
      return {
        outcome: "credential_error",
        requirement,
        providerId: found.id,
        reason: "ambiguous",
        credentialIds: usable.map((row) => row.id),
        message: `Ambiguous credential match for ${describe(requirement)}: ${usable.length} credentials qualify`,
      };
    }
    const [match] = usable;
    if (match) return reveal(input.secrets, requirement, provider, match);
    if (!firstUnusable) {
      for (const row of here) {
        const reason = unusableReason(row, now);
        if (reason) {
          firstUnusable = { row, reason };
          break;
        }
      }
    }
  }

  if (firstUnusable) {
    const { row, reason } = firstUnusable;
    if (reason === "error") {
      return {
        outcome: "credential_error",
        requirement,
        providerId: found.id,
        reason: "status_error",
        credentialIds: [row.id],
        message: `Credential "${row.name}" for ${describe(requirement)} is in status error`,
      };
    }
    return {
      outcome: reason === "expired" ? "credential_expired" : "credential_revoked",
      requirement,
      providerId: found.id,
      credentialId: row.id,
      message: `Credential "${row.name}" for ${describe(requirement)} is ${reason}`,
    };
  }
  return {
    outcome: "credential_missing",
    requirement,
    providerId: found.id,
    message: `No credential found for ${describe(requirement)}`,
  };
}

async function reveal(
  secrets: SecretBox,
  requirement: ResolvableRequirement,
  provider: ResolvedProvider,
  row: CredentialRow,
): Promise<CredentialOutcome> {
  try {
    const secret = await secrets.decrypt(row.secretCiphertext, secretContext.credentialSecret(row.id));
    return {
      outcome: "ok",
      requirement,
      provider,
      credentialId: row.id,
      credentialTenantId: row.tenantId,
      secret,
      scopes: row.scopes ?? [],
      expiresAt: row.expiresAt,
    };
  } catch (err) {
    if (!(err instanceof SecretDecryptionError)) throw err;
    return {
      outcome: "credential_error",
      requirement,
      providerId: provider.id,
      reason: "undecryptable",
      credentialIds: [row.id],
      message: `The secret of credential "${row.name}" cannot be decrypted with the current SECRETS_KEY`,
    };
  }
}
