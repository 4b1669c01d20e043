/**
 * OAuth clients: a tenant's client_id/client_secret registration with a provider (at most one per
 * tenant and provider). The client secret is encrypted at rest and never leaves the hub through the API.
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { oauthClient } from "../db/schema";
import { notFound } from "../errors";
import { newId } from "../lib/ids";
import { type SecretBox, secretContext } from "../secrets/encryption";
import { findVisibleProvider } from "./providers";

export type OAuthClientRow = typeof oauthClient.$inferSelect;

export async function findOAuthClient(db: Db, tenantId: string, oauthClientId: string): Promise<OAuthClientRow> {
  const [row] = await db
    .select()
    .from(oauthClient)
    .where(and(eq(oauthClient.id, oauthClientId), eq(oauthClient.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("OAuth client not found");
  return row;
}

export function listOAuthClients(db: Db, tenantId: string, page: PageQuery) {
  return paginate(
    page,
    { time: oauthClient.createdAt, id: oauthClient.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(oauthClient)
        .where(and(eq(oauthClient.tenantId, tenantId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

export type OAuthClientInput = {
  providerId: string;
  name: string;
  clientId: string;
  clientSecret: string;
  redirectUris?: string[] | null | undefined;
  defaultScopes?: string[] | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
};

/** The provider must be visible from the tenant (its own or an ancestor's); one client per provider (409). */
export async function createOAuthClient(
  db: Db,
  secrets: SecretBox,
  tenantId: string,
  input: OAuthClientInput,
): Promise<OAuthClientRow> {
  await findVisibleProvider(db, tenantId, input.providerId);
  const id = newId("oauthClient");
  const [row] = await db
    .insert(oauthClient)
    .values({
      id,
      tenantId,
      providerId: input.providerId,
      name: input.name,
      clientId: input.clientId,
      clientSecretCiphertext: await secrets.encrypt(input.clientSecret, secretContext.oauthClientSecret(id)),
      redirectUris: input.redirectUris ?? null,
      defaultScopes: input.defaultScopes ?? null,
      metadata: input.metadata ?? null,
    })
    .returning();
  if (!row) throw new Error("OAuth client insert returned no row");
  return row;
}

export type OAuthClientPatch = Partial<Omit<OAuthClientInput, "providerId">>;

export async function updateOAuthClient(
  db: Db,
  secrets: SecretBox,
  tenantId: string,
  oauthClientId: string,
  patch: OAuthClientPatch,
): Promise<OAuthClientRow> {
  await findOAuthClient(db, tenantId, oauthClientId);
  const values: Partial<typeof oauthClient.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.clientId !== undefined) values.clientId = patch.clientId;
  if (patch.redirectUris !== undefined) values.redirectUris = patch.redirectUris;
  if (patch.defaultScopes !== undefined) values.defaultScopes = patch.defaultScopes;
  if (patch.metadata !== undefined) values.metadata = patch.metadata;
  if (patch.clientSecret !== undefined && patch.clientSecret !== null) {
    values.clientSecretCiphertext = await secrets.encrypt(
      patch.clientSecret,
      secretContext.oauthClientSecret(oauthClientId),
    );
  }
  const [row] = await db
    .update(oauthClient)
    .set(values)
    .where(and(eq(oauthClient.id, oauthClientId), eq(oauthClient.tenantId, tenantId)))
    .returning();
  if (!row) throw notFound("OAuth client not found");
  return row;
}

export async function deleteOAuthClient(db: Db, tenantId: string, oauthClientId: string): Promise<void> {
  const deleted = await db
    .delete(oauthClient)
    .where(and(eq(oauthClient.id, oauthClientId), eq(oauthClient.tenantId, tenantId)))
    .returning({ id: oauthClient.id });
  if (deleted.length === 0) throw notFound("OAuth client not found");
}

/** The decrypted client secret, for the hub's own use (an OAuth flow); never for an API response. */
export function revealClientSecret(secrets: SecretBox, row: OAuthClientRow): Promise<string> {
  return secrets.decrypt(row.clientSecretCiphertext, secretContext.oauthClientSecret(row.id));
}
