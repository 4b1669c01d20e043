/**
 * Credentials: stored secrets (API keys, OAuth tokens) for a provider, owned by the tenant (no
 * principal) or by one of its principals. Secrets are encrypted at rest and write-only through the API;
 * only credential resolution (at launch) decrypts them.
 */
import { and, eq, isNull, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { credential, type credentialStatuses, type credentialTypes } from "../db/schema";
import { badRequest, notFound } from "../errors";
import { newId } from "../lib/ids";
import { type SecretBox, secretContext } from "../secrets/encryption";
import { findPrincipal } from "../tenancy/principals";
import { findOAuthClient } from "./oauth-clients";
import { chainDepth, findVisibleProvider, inChain, tenantChain } from "./providers";

export type CredentialRow = typeof credential.$inferSelect;

/** `me`: owned by the caller's principal; `org`: owned by the tenant; `all`: both and everyone's. */
export type CredentialOwner = "me" | "org" | "all";

export function listCredentials(
  db: Db,
  tenantId: string,
  filter: { owner: CredentialOwner; callerPrincipalId: string },
  page: PageQuery,
) {
  let owned: SQL | undefined;
  if (filter.owner === "me") owned = eq(credential.principalId, filter.callerPrincipalId);
  if (filter.owner === "org") owned = isNull(credential.principalId);
  return paginate(
    page,
    { time: credential.createdAt, id: credential.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(credential)
        .where(and(eq(credential.tenantId, tenantId), owned, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** A credential of the tenant or of an ancestor (metadata is visible down the hierarchy). */
export async function findVisibleCredential(db: Db, tenantId: string, credentialId: string): Promise<CredentialRow> {
  const chain = await tenantChain(db, tenantId);
  const [row] = await db
    .select()
    .from(credential)
    .where(and(eq(credential.id, credentialId), inChain(credential.tenantId, chain)))
    .limit(1);
  if (!row) throw notFound("Credential not found");
  return row;
}

/** The credential a name means in a tenant: the nearest in the chain with that name. */
export async function resolveCredentialByName(db: Db, tenantId: string, name: string): Promise<CredentialRow> {
  const chain = await tenantChain(db, tenantId);
  const [row] = await db
    .select()
    .from(credential)
    .where(and(eq(credential.name, name), inChain(credential.tenantId, chain)))
    .orderBy(chainDepth(credential.tenantId, chain))
    .limit(1);
  if (!row) throw notFound("Credential not found");
  return row;
}

export type CredentialInput = {
  providerId: string;
  name: string;
  type: (typeof credentialTypes)[number];
  principalId?: string | null | undefined;
  oauthClientId?: string | null | undefined;
  description?: string | null | undefined;
  secret: string;
  refreshSecret?: string | null | undefined;
  scopes?: string[] | null | undefined;
  expiresAt?: Date | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
};

/**
 * The owner principal and the OAuth client are checked: the principal must be of this tenant (404), the
 * OAuth client of this tenant (404) and for the same provider (400).
 */
export async function createCredential(
  db: Db,
  secrets: SecretBox,
  tenantId: string,
  input: CredentialInput,
): Promise<CredentialRow> {
  await findVisibleProvider(db, tenantId, input.providerId);
  if (input.principalId) await findPrincipal(db, tenantId, input.principalId);
  if (input.oauthClientId) {
    const client = await findOAuthClient(db, tenantId, input.oauthClientId);
    if (client.providerId !== input.providerId) {
      throw badRequest("The OAuth client belongs to another provider", "oauth_client_provider_mismatch");
    }
  }
  const id = newId("credential");
  const [row] = await db
    .insert(credential)
    .values({
      id,
      tenantId,
      providerId: input.providerId,
      principalId: input.principalId ?? null,
      oauthClientId: input.oauthClientId ?? null,
      name: input.name,
      type: input.type,
      description: input.description ?? null,
      secretCiphertext: await secrets.encrypt(input.secret, secretContext.credentialSecret(id)),
      refreshSecretCiphertext:
        input.refreshSecret == null
          ? null
          : await secrets.encrypt(input.refreshSecret, secretContext.credentialRefreshSecret(id)),
      scopes: input.scopes ?? null,
      expiresAt: input.expiresAt ?? null,
      metadata: input.metadata ?? null,
    })
    .returning();
  if (!row) throw new Error("Credential insert returned no row");
  return row;
}

export type CredentialPatch = {
  name?: string | undefined;
  description?: string | null | undefined;
  secret?: string | undefined;
  refreshSecret?: string | null | undefined;
  scopes?: string[] | null | undefined;
  expiresAt?: Date | null | undefined;
  status?: (typeof credentialStatuses)[number] | undefined;
  metadata?: Record<string, unknown> | null | undefined;
};

/** Changes a credential of this tenant (an ancestor's is a 404 here). `refreshSecret: null` clears it. */
export async function updateCredential(
  db: Db,
  secrets: SecretBox,
  tenantId: string,
  credentialId: string,
  patch: CredentialPatch,
): Promise<CredentialRow> {
  const [current] = await db
    .select({ id: credential.id })
    .from(credential)
    .where(and(eq(credential.id, credentialId), eq(credential.tenantId, tenantId)))
    .limit(1);
  if (!current) throw notFound("Credential not found");
  const values: Partial<typeof credential.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.description !== undefined) values.description = patch.description;
  if (patch.scopes !== undefined) values.scopes = patch.scopes;
  if (patch.expiresAt !== undefined) values.expiresAt = patch.expiresAt;
  if (patch.status !== undefined) values.status = patch.status;
  if (patch.metadata !== undefined) values.metadata = patch.metadata;
  if (patch.secret !== undefined) {
    values.secretCiphertext = await secrets.encrypt(patch.secret, secretContext.credentialSecret(credentialId));
  }
  if (patch.refreshSecret !== undefined) {
    values.refreshSecretCiphertext =
      patch.refreshSecret === null
        ? null
        : await secrets.encrypt(patch.refreshSecret, secretContext.credentialRefreshSecret(credentialId));
  }
  const [row] = await db
    .update(credential)
    .set(values)
    .where(and(eq(credential.id, credentialId), eq(credential.tenantId, tenantId)))
    .returning();
  if (!row) throw notFound("Credential not found");
  return row;
}

export async function deleteCredential(db: Db, tenantId: string, credentialId: string): Promise<void> {
  const deleted = await db
    .delete(credential)
    .where(and(eq(credential.id, credentialId), eq(credential.tenantId, tenantId)))
    .returning({ id: credential.id });
  if (deleted.length === 0) throw notFound("Credential not found");
}

/** The decrypted secret, for the hub's own use (launch, source updates); never for an API response. */
export function revealSecret(secrets: SecretBox, row: CredentialRow): Promise<string> {
  return secrets.decrypt(row.secretCiphertext, secretContext.credentialSecret(row.id));
}

/** The decrypted refresh secret, or null when the credential has none. */
export function revealRefreshSecret(secrets: SecretBox, row: CredentialRow): Promise<string | null> {
  if (!row.refreshSecretCiphertext) return Promise.resolve(null);
  return secrets.decrypt(row.refreshSecretCiphertext, secretContext.credentialRefreshSecret(row.id));
}
