/**
 * The hub's D1 schema: every table of the hub's data model, in SQLite.
 *
 * - Timestamps are integer milliseconds (`timestamp_ms` columns read back as `Date`). Defaults are set in
 *   JS, not with `unixepoch()`, which only has second precision and would break keyset pagination.
 * - JSON values are text (`mode: "json"`), byte strings are blobs.
 * - Secrets are never stored in plaintext: provider credentials and OAuth client secrets are AES-GCM
 *   ciphertext (`*_ciphertext`), bearer secrets (git tokens, sidecar secrets) are SHA-256 digests.
 */
import { sql } from "drizzle-orm";
import {
  type AnySQLiteColumn,
  blob,
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

const now = () => new Date();
const createdAt = () => integer("created_at", { mode: "timestamp_ms" }).notNull().$defaultFn(now);
const updatedAt = () => integer("updated_at", { mode: "timestamp_ms" }).notNull().$defaultFn(now).$onUpdateFn(now);
const timestamp = (name: string) => integer(name, { mode: "timestamp_ms" });
const json = <T>(name: string) => text(name, { mode: "json" }).$type<T>();
const bytes = (name: string) => blob(name, { mode: "buffer" }).$type<Uint8Array>();

// ---------------------------------------------------------------------------------------------
// Enumerations (shared with validation schemas and the OpenAPI document)
// ---------------------------------------------------------------------------------------------
export const principalKinds = ["user", "agent"] as const;
export const principalStatuses = ["active", "suspended", "invited", "deactivated"] as const;
export const grantEffects = ["allow", "deny", "ask"] as const;
/** `approval`: made by approving an approval with scope `always`. */
export const grantOrigins = ["system", "role", "creator", "invoker", "approval"] as const;
export const federationDirections = ["inbound", "outbound", "bilateral"] as const;
export const agentStatuses = ["deployed", "stopped"] as const;
export const agentVersionStatuses = ["active", "inactive", "failed"] as const;
export const credentialTypes = ["api_key", "oauth_token", "certificate", "other"] as const;
export const credentialStatuses = ["active", "expired", "revoked", "error"] as const;
export const assetAccessModes = ["read-only", "read-write"] as const;
export const walletBackends = ["crypto", "fiat", "credits"] as const;
export const transactionDirections = ["inbound", "outbound"] as const;
export const transactionStatuses = ["pending", "completed", "failed"] as const;
export const sidecarStatuses = ["online", "offline", "error"] as const;
export const sessionStatuses = ["active", "ending", "ended"] as const;
export const instanceStatuses = ["deployed", "running", "updating", "error", "stopped"] as const;
export const turnStatuses = ["running", "completed", "failed"] as const;
export const turnPartTypes = [
  "text",
  "reasoning",
  "tool",
  "file",
  "error",
  "refusal",
  "step-start",
  "step-finish",
  "snapshot",
  "patch",
] as const;
export const mailDirections = ["inbound", "outbound"] as const;
export const mailStatuses = ["pending", "delivered"] as const;
export const gitTokenKinds = ["pat", "svc"] as const;
export const approvalStatuses = ["pending", "approved", "rejected", "expired"] as const;
export const approvalScopes = ["once", "always"] as const;
/** Log levels, least severe first (a `level` filter means "this one or more severe"). */
export const logLevels = ["debug", "info", "warn", "error"] as const;
/** Who wrote a log entry: the hub itself, or the sidecar in a `log` frame. */
export const logSources = ["hub", "sidecar"] as const;

// ---------------------------------------------------------------------------------------------
// Identity (better-auth's standard tables)
// ---------------------------------------------------------------------------------------------
export const user = sqliteTable("user", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  email: text("email").notNull().unique(),
  emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(false),
  image: text("image"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const session = sqliteTable(
  "session",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    token: text("token").notNull().unique(),
    expiresAt: timestamp("expires_at").notNull(),
    ipAddress: text("ip_address"),
    userAgent: text("user_agent"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("session_user_idx").on(t.userId)],
);

export const account = sqliteTable(
  "account",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    accountId: text("account_id").notNull(),
    providerId: text("provider_id").notNull(),
    accessToken: text("access_token"),
    refreshToken: text("refresh_token"),
    accessTokenExpiresAt: timestamp("access_token_expires_at"),
    refreshTokenExpiresAt: timestamp("refresh_token_expires_at"),
    scope: text("scope"),
    idToken: text("id_token"),
    password: text("password"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("account_user_idx").on(t.userId)],
);

export const verification = sqliteTable(
  "verification",
  {
    id: text("id").primaryKey(),
    identifier: text("identifier").notNull(),
    value: text("value").notNull(),
    expiresAt: timestamp("expires_at").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("verification_identifier_idx").on(t.identifier)],
);

// ---------------------------------------------------------------------------------------------
// Tenancy and authorization
// ---------------------------------------------------------------------------------------------
export const tenant = sqliteTable(
  "tenant",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    slug: text("slug").notNull().unique(),
    domain: text("domain").notNull().unique(),
    parentId: text("parent_id").references((): AnySQLiteColumn => tenant.id),
    config: json<Record<string, unknown>>("config"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("tenant_parent_idx").on(t.parentId)],
);

export const federationTrust = sqliteTable(
  "federation_trust",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    targetTenantId: text("target_tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    direction: text("direction", { enum: federationDirections }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("federation_trust_pair_uq").on(t.tenantId, t.targetTenantId),
    index("federation_trust_target_idx").on(t.targetTenantId),
  ],
);

export const principal = sqliteTable(
  "principal",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: principalKinds }).notNull(),
    refId: text("ref_id").notNull(),
    status: text("status", { enum: principalStatuses }).notNull().default("active"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("principal_tenant_kind_ref_uq").on(t.tenantId, t.kind, t.refId),
    index("principal_ref_idx").on(t.refId),
    index("principal_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const role = sqliteTable(
  "role",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    description: text("description"),
    isSystem: integer("is_system", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  // Role names are unique in a tenant: duplicates are a 409, not a surprise.
  (t) => [
    uniqueIndex("role_tenant_name_uq").on(t.tenantId, t.name),
    index("role_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const principalRole = sqliteTable(
  "principal_role",
  {
    principalId: text("principal_id")
      .notNull()
      .references(() => principal.id, { onDelete: "cascade" }),
    roleId: text("role_id")
      .notNull()
      .references(() => role.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.principalId, t.roleId] }), index("principal_role_role_idx").on(t.roleId)],
);

export type GrantConditions = Record<string, unknown>;

export const grant = sqliteTable(
  "grant",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    roleId: text("role_id").references(() => role.id, { onDelete: "cascade" }),
    principalId: text("principal_id").references(() => principal.id, { onDelete: "cascade" }),
    resource: text("resource").notNull(),
    action: text("action").notNull(),
    effect: text("effect", { enum: grantEffects }).notNull(),
    conditions: json<GrantConditions>("conditions"),
    origin: text("origin", { enum: grantOrigins }).notNull(),
    expiresAt: timestamp("expires_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("grant_principal_idx").on(t.principalId),
    index("grant_role_idx").on(t.roleId),
    index("grant_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

// ---------------------------------------------------------------------------------------------
// Agent definitions and catalog
// ---------------------------------------------------------------------------------------------
export type CredentialRequirement = {
  providerName: string;
  scopes?: string[];
  source: "tenant" | "creator" | "invoker";
  name?: string;
};
export type GrantRequirement = {
  resource: string;
  action: string;
  effect?: (typeof grantEffects)[number];
  source: "creator" | "invoker";
  conditions?: GrantConditions | null;
};

export const agent = sqliteTable(
  "agent",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    creatorPrincipalId: text("creator_principal_id")
      .notNull()
      .references(() => principal.id),
    name: text("name").notNull(),
    description: text("description"),
    systemPrompt: text("system_prompt"),
    contextConfig: json<Record<string, unknown>>("context_config"),
    initialState: json<Record<string, unknown>>("initial_state"),
    modelConfig: json<Record<string, unknown>>("model_config"),
    capabilities: json<Record<string, unknown>>("capabilities"),
    credentialRequirements: json<CredentialRequirement[]>("credential_requirements"),
    grantRequirements: json<GrantRequirement[]>("grant_requirements"),
    currentVersion: text("current_version").notNull().default("1"),
    status: text("status", { enum: agentStatuses }).notNull().default("deployed"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("agent_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("agent_creator_idx").on(t.creatorPrincipalId),
  ],
);

/** The content a version restores on rollback. */
export type AgentSnapshot = {
  name: string;
  description: string | null;
  systemPrompt: string | null;
  contextConfig: Record<string, unknown> | null;
  initialState: Record<string, unknown> | null;
  modelConfig: Record<string, unknown> | null;
  capabilities: Record<string, unknown> | null;
  credentialRequirements: CredentialRequirement[] | null;
  grantRequirements: GrantRequirement[] | null;
  roleIds: string[];
};

export const agentVersion = sqliteTable(
  "agent_version",
  {
    id: text("id").primaryKey(),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    version: text("version").notNull(),
    status: text("status", { enum: agentVersionStatuses }).notNull().default("active"),
    snapshot: json<AgentSnapshot>("snapshot"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("agent_version_agent_version_uq").on(t.agentId, t.version),
    index("agent_version_agent_created_idx").on(t.agentId, t.createdAt, t.id),
  ],
);

export const agentRole = sqliteTable(
  "agent_role",
  {
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    roleId: text("role_id")
      .notNull()
      .references(() => role.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.roleId] }), index("agent_role_role_idx").on(t.roleId)],
);

export const provider = sqliteTable(
  "provider",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    plugin: text("plugin").notNull(),
    authorizationUrl: text("authorization_url"),
    tokenUrl: text("token_url"),
    userInfoUrl: text("user_info_url"),
    scopes: json<string[]>("scopes"),
    metadata: json<Record<string, unknown>>("metadata"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("provider_tenant_name_uq").on(t.tenantId, t.name),
    index("provider_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const oauthClient = sqliteTable(
  "oauth_client",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    providerId: text("provider_id")
      .notNull()
      .references(() => provider.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    clientId: text("client_id").notNull(),
    /** AES-GCM ciphertext of the client secret (IV prepended); never returned by the API. */
    clientSecretCiphertext: bytes("client_secret_ciphertext").notNull(),
    redirectUris: json<string[]>("redirect_uris"),
    defaultScopes: json<string[]>("default_scopes"),
    metadata: json<Record<string, unknown>>("metadata"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("oauth_client_tenant_provider_uq").on(t.tenantId, t.providerId),
    index("oauth_client_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const credential = sqliteTable(
  "credential",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    /** Null: owned by the tenant itself. */
    principalId: text("principal_id").references(() => principal.id, { onDelete: "set null" }),
    providerId: text("provider_id")
      .notNull()
      .references(() => provider.id, { onDelete: "cascade" }),
    oauthClientId: text("oauth_client_id").references(() => oauthClient.id, { onDelete: "set null" }),
    name: text("name").notNull(),
    type: text("type", { enum: credentialTypes }).notNull(),
    description: text("description"),
    /** AES-GCM ciphertext of the secret (IV prepended); never returned by the API. */
    secretCiphertext: bytes("secret_ciphertext").notNull(),
    refreshSecretCiphertext: bytes("refresh_secret_ciphertext"),
    scopes: json<string[]>("scopes"),
    expiresAt: timestamp("expires_at"),
    status: text("status", { enum: credentialStatuses }).notNull().default("active"),
    metadata: json<Record<string, unknown>>("metadata"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("credential_tenant_name_uq").on(t.tenantId, t.name),
    index("credential_provider_idx").on(t.providerId),
    index("credential_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const offering = sqliteTable(
  "offering",
  {
    id: text("id").primaryKey(),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    description: text("description"),
    pricing: json<{
      base?: { amount: string; currency: string };
      methods?: string[];
      negotiable?: boolean;
      bounds?: { min?: string; max?: string };
    }>("pricing"),
    schema: json<Record<string, unknown>>("schema"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("offering_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("offering_agent_idx").on(t.agentId),
  ],
);

export const wallet = sqliteTable(
  "wallet",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    backendType: text("backend_type", { enum: walletBackends }).notNull(),
    currency: text("currency").notNull(),
    /** Exact decimal string; arithmetic is done on scaled integers, never floats. */
    balance: text("balance").notNull().default("0"),
    config: json<Record<string, unknown>>("config"),
    /** The wallet a launch charges when it names none; at most one per tenant. */
    isDefault: integer("is_default", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("wallet_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    uniqueIndex("wallet_tenant_default_uq").on(t.tenantId).where(sql`${t.isDefault} = 1`),
  ],
);

export const transaction = sqliteTable(
  "transaction",
  {
    id: text("id").primaryKey(),
    walletId: text("wallet_id")
      .notNull()
      .references(() => wallet.id, { onDelete: "cascade" }),
    agentId: text("agent_id").references(() => agent.id, { onDelete: "set null" }),
    direction: text("direction", { enum: transactionDirections }).notNull(),
    amount: text("amount").notNull(),
    currency: text("currency").notNull(),
    recipientId: text("recipient_id"),
    senderId: text("sender_id"),
    requestId: text("request_id"),
    status: text("status", { enum: transactionStatuses }).notNull().default("pending"),
    /** What the transaction paid for, e.g. a model call's instance, turn, model and token usage. */
    metadata: json<Record<string, unknown>>("metadata"),
    createdAt: createdAt(),
  },
  (t) => [
    index("transaction_wallet_created_idx").on(t.walletId, t.createdAt, t.id),
    // A client's request id names one transaction per wallet: a retried request cannot move money twice.
    uniqueIndex("transaction_wallet_request_uq").on(t.walletId, t.requestId),
  ],
);

// ---------------------------------------------------------------------------------------------
// Assets (git repositories) and git tokens
// ---------------------------------------------------------------------------------------------
export const asset = sqliteTable(
  "asset",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    kind: text("kind").notNull(),
    name: text("name").notNull(),
    displayName: text("display_name"),
    creatorPrincipalId: text("creator_principal_id").references(() => principal.id, {
      onDelete: "set null",
    }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("asset_tenant_kind_name_uq").on(t.tenantId, t.kind, t.name),
    index("asset_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const agentAsset = sqliteTable(
  "agent_asset",
  {
    id: text("id").primaryKey(),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    assetId: text("asset_id")
      .notNull()
      .references(() => asset.id, { onDelete: "cascade" }),
    ref: text("ref").notNull().default("refs/heads/main"),
    accessMode: text("access_mode", { enum: assetAccessModes }).notNull().default("read-only"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("agent_asset_agent_asset_uq").on(t.agentId, t.assetId),
    index("agent_asset_asset_idx").on(t.assetId),
  ],
);

export const gitToken = sqliteTable(
  "git_token",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").references(() => tenant.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    principalId: text("principal_id").references(() => principal.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: text("kind", { enum: gitTokenKinds }).notNull(),
    /** SHA-256 of the secret; the secret itself is shown once and never stored. */
    tokenHash: bytes("token_hash_sha256").notNull().unique(),
    resource: text("resource").notNull(),
    refPattern: text("ref_pattern").notNull(),
    actions: json<string[]>("actions").notNull(),
    expiresAt: timestamp("expires_at").notNull(),
    revokedAt: timestamp("revoked_at"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("git_token_user_name_active_uq").on(t.userId, t.name).where(sql`${t.revokedAt} IS NULL`),
    index("git_token_user_created_idx").on(t.userId, t.createdAt, t.id),
    index("git_token_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

// ---------------------------------------------------------------------------------------------
// Runtime: sidecars, sessions, instances, turns, mail, approvals
// ---------------------------------------------------------------------------------------------
export const sidecar = sqliteTable(
  "sidecar",
  {
    id: text("id").primaryKey(),
    /** Sidecars belong to a tenant and authenticate with a secret. */
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    url: text("url"),
    secretHash: bytes("secret_hash_sha256").notNull().unique(),
    status: text("status", { enum: sidecarStatuses }).notNull().default("offline"),
    capacity: integer("capacity").notNull().default(16),
    lastHeartbeat: timestamp("last_heartbeat"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("sidecar_tenant_name_uq").on(t.tenantId, t.name),
    index("sidecar_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const agentSession = sqliteTable(
  "agent_session",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    /** The invoker's principal. */
    principalId: text("principal_id")
      .notNull()
      .references(() => principal.id),
    status: text("status", { enum: sessionStatuses }).notNull().default("active"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    endedAt: timestamp("ended_at"),
  },
  (t) => [
    index("agent_session_principal_idx").on(t.principalId, t.createdAt, t.id),
    index("agent_session_agent_idx").on(t.agentId),
  ],
);

export const agentInstance = sqliteTable(
  "agent_instance",
  {
    id: text("id").primaryKey(),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    /** The instance's own principal. */
    principalId: text("principal_id")
      .notNull()
      .references(() => principal.id),
    address: text("address").notNull().unique(),
    versionId: text("version_id").references(() => agentVersion.id, { onDelete: "set null" }),
    sessionId: text("session_id").references(() => agentSession.id, { onDelete: "set null" }),
    status: text("status", { enum: instanceStatuses }).notNull().default("deployed"),
    sidecarId: text("sidecar_id").references(() => sidecar.id, { onDelete: "set null" }),
    walletId: text("wallet_id").references(() => wallet.id, { onDelete: "set null" }),
    /** Hex Ed25519 public key the sidecar generated for this instance. */
    publicKey: text("public_key"),
    /**
     * SHA-256 of the instance's API token (`ahi_…`, given to its sidecar once): the agent calls the API as its
     * own principal with it while the instance runs. Cleared when it stops.
     */
    apiTokenHash: bytes("api_token_sha256").unique(),
    kernelId: text("kernel_id"),
    stopReason: text("stop_reason"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    endedAt: timestamp("ended_at"),
  },
  (t) => [
    index("agent_instance_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("agent_instance_agent_idx").on(t.agentId),
    index("agent_instance_sidecar_idx").on(t.sidecarId),
    index("agent_instance_principal_idx").on(t.principalId),
  ],
);

export const sessionAsset = sqliteTable(
  "session_asset",
  {
    instanceId: text("instance_id")
      .notNull()
      .references(() => agentInstance.id, { onDelete: "cascade" }),
    agentAssetId: text("agent_asset_id")
      .notNull()
      .references(() => agentAsset.id, { onDelete: "cascade" }),
    mountPath: text("mount_path").notNull(),
    assetPackSha: text("asset_pack_sha").notNull(),
    sourceCommitSha: text("source_commit_sha").notNull(),
    materializedAt: timestamp("materialized_at").notNull().$defaultFn(now),
  },
  (t) => [
    primaryKey({ columns: [t.instanceId, t.agentAssetId] }),
    index("session_asset_pack_sha_idx").on(t.assetPackSha),
  ],
);

export const inferenceTurn = sqliteTable(
  "inference_turn",
  {
    id: text("id").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => agentSession.id, { onDelete: "cascade" }),
    instanceId: text("instance_id")
      .notNull()
      .references(() => agentInstance.id, { onDelete: "cascade" }),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    model: text("model").notNull(),
    status: text("status", { enum: turnStatuses }).notNull().default("running"),
    /** The model call's usage, as settled when it ended (docs/sidecar-protocol.md, "Usage"). */
    inputTokens: integer("input_tokens").notNull().default(0),
    outputTokens: integer("output_tokens").notNull().default(0),
    cacheReadTokens: integer("cache_read_tokens").notNull().default(0),
    cacheWriteTokens: integer("cache_write_tokens").notNull().default(0),
    thinkingTokens: integer("thinking_tokens").notNull().default(0),
    /** Exact decimal string in the wallet's currency. */
    cost: text("cost").notNull().default("0"),
    startedAt: timestamp("started_at").notNull(),
    endedAt: timestamp("ended_at"),
    /**
     * W3C trace id (32 hex) of the trace the turn belongs to: a caller's `traceparent` on the mail that
     * started it, else one of the hub's; the steps of one tool loop share it (docs/observability.md).
     */
    traceId: text("trace_id"),
    /** The span the turn's span is a child of: the caller's, from `traceparent`; null for a root. */
    parentSpanId: text("parent_span_id"),
  },
  (t) => [
    index("inference_turn_instance_started_idx").on(t.instanceId, t.startedAt, t.id),
    index("inference_turn_tenant_started_idx").on(t.tenantId, t.startedAt, t.id),
    index("inference_turn_tenant_trace_idx").on(t.tenantId, t.traceId),
  ],
);

export const turnPart = sqliteTable(
  "turn_part",
  {
    id: text("id").primaryKey(),
    turnId: text("turn_id")
      .notNull()
      .references(() => inferenceTurn.id, { onDelete: "cascade" }),
    sessionId: text("session_id")
      .notNull()
      .references(() => agentSession.id, { onDelete: "cascade" }),
    type: text("type", { enum: turnPartTypes }).notNull(),
    content: text("content"),
    metadata: json<Record<string, unknown>>("metadata"),
    ordinal: integer("ordinal").notNull(),
    /** When the event that made the part arrived (the spans of a trace); null for parts recorded before. */
    createdAt: timestamp("created_at"),
  },
  (t) => [uniqueIndex("turn_part_turn_ordinal_uq").on(t.turnId, t.ordinal)],
);

export const sessionMail = sqliteTable(
  "session_mail",
  {
    id: text("id").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => agentSession.id, { onDelete: "cascade" }),
    instanceId: text("instance_id").references(() => agentInstance.id, { onDelete: "set null" }),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    direction: text("direction", { enum: mailDirections }).notNull(),
    status: text("status", { enum: mailStatuses }).notNull().default("pending"),
    messageId: text("message_id"),
    /** The full MIME bytes; null when they live in R2 under `rawKey` (large messages). */
    raw: bytes("raw"),
    rawKey: text("raw_key"),
    size: integer("size").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("session_mail_instance_created_idx").on(t.instanceId, t.createdAt, t.id)],
);

export const approval = sqliteTable(
  "approval",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    /** The (agent instance) principal whose action is waiting. */
    principalId: text("principal_id")
      .notNull()
      .references(() => principal.id, { onDelete: "cascade" }),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    instanceId: text("instance_id").references(() => agentInstance.id, { onDelete: "cascade" }),
    sessionId: text("session_id").references(() => agentSession.id, { onDelete: "set null" }),
    resource: text("resource").notNull(),
    action: text("action").notNull(),
    context: json<Record<string, unknown>>("context"),
    status: text("status", { enum: approvalStatuses }).notNull().default("pending"),
    scope: text("scope", { enum: approvalScopes }),
    resolvedByPrincipalId: text("resolved_by_principal_id").references(() => principal.id, {
      onDelete: "set null",
    }),
    message: text("message"),
    /** An agent's API request waiting for it: method, path and body digest, so its retry finds it. */
    requestKey: text("request_key"),
    /** The sidecar's `gate.request` id, answered by `approval.decision`. */
    gateRequestId: text("gate_request_id"),
    /** A `once` approval of an API request is used by the first retry. */
    consumedAt: timestamp("consumed_at"),
    createdAt: createdAt(),
    /** Undecided by then, it is expired. */
    expiresAt: timestamp("expires_at"),
    resolvedAt: timestamp("resolved_at"),
  },
  (t) => [
    index("approval_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("approval_instance_idx").on(t.instanceId),
    index("approval_request_idx").on(t.principalId, t.requestKey),
    index("approval_pending_expiry_idx").on(t.status, t.expiresAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Git storage: packs and their indexes live in R2 (immutable); D1 holds the repository row (HEAD and
// the push lease that serializes writers), the refs (updated under the lease) and the pack catalog.
// ---------------------------------------------------------------------------------------------
export const gitRepository = sqliteTable(
  "git_repository",
  {
    /** `<kind>/<owner id>`, e.g. `asset/ast_…` or `agent-state/ins_…`. */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    /** HEAD is always symbolic here. */
    head: text("head").notNull().default("refs/heads/main"),
    /** The push lease: whoever holds it may add packs and move refs until it expires. */
    leaseToken: text("lease_token"),
    leaseExpiresAt: timestamp("lease_expires_at"),
    /**
     * Set when a push may have left pack files in R2 that no catalog row names (its lease expired under it,
     * or it died holding it); the cleanup pass sweeps the repository and clears it.
     */
    sweepRequestedAt: timestamp("sweep_requested_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("git_repository_tenant_idx").on(t.tenantId)],
);

export const gitRef = sqliteTable(
  "git_ref",
  {
    repositoryId: text("repository_id")
      .notNull()
      .references(() => gitRepository.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    oid: text("oid").notNull(),
    /**
     * What `oid` peels to: the commit (or tree, blob) at the end of its chain of annotated tags, or `oid`
     * itself when it is not a tag. Kept at push time so an advertisement reads no objects; null for refs
     * written before it was kept.
     */
    peeled: text("peeled"),
    updatedAt: updatedAt(),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.name] })],
);

export const gitPack = sqliteTable(
  "git_pack",
  {
    /** The pack's SHA-1 trailer, as git names pack files. */
    id: text("id").notNull(),
    repositoryId: text("repository_id")
      .notNull()
      .references(() => gitRepository.id, { onDelete: "cascade" }),
    objectCount: integer("object_count").notNull(),
    packBytes: integer("pack_bytes").notNull(),
    indexBytes: integer("index_bytes").notNull(),
    /** Objects this pack repeats from older packs; a clone can only stream packs verbatim when none do. */
    duplicateObjects: integer("duplicate_objects").notNull().default(0),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.repositoryId, t.id] }),
    index("git_pack_repository_created_idx").on(t.repositoryId, t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------
/**
 * Append-only record of changes to a tenant's members, roles, grants, credentials, providers, wallets,
 * git tokens and agent definitions. Actor and resource ids have no foreign keys on purpose: an entry
 * outlives the principal who acted and the object it names; only deleting the tenant removes it.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    /** `<resource type>.<verb>`, e.g. `grant.create`. */
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull(),
    actorPrincipalId: text("actor_principal_id"),
    actorUserId: text("actor_user_id"),
    /** The fields the request set (never secret values). */
    changes: json<Record<string, unknown>>("changes"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index("audit_log_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("audit_log_tenant_resource_idx").on(t.tenantId, t.resourceType, t.resourceId, t.createdAt),
    index("audit_log_tenant_actor_idx").on(t.tenantId, t.actorPrincipalId, t.createdAt),
    index("audit_log_tenant_action_idx").on(t.tenantId, t.action, t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Instance logs
// ---------------------------------------------------------------------------------------------
/**
 * What happened to an instance, in words: what the hub recorded (launch, deploy, reconnects, aborts,
 * errors, approvals, wallet events) and what its sidecar sent in `log` frames. Bounded per instance in
 * count and age (src/runtime/instance-logs.ts); deleted with the instance.
 */
export const instanceLog = sqliteTable(
  "instance_log",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenant.id, { onDelete: "cascade" }),
    agentId: text("agent_id")
      .notNull()
      .references(() => agent.id, { onDelete: "cascade" }),
    instanceId: text("instance_id")
      .notNull()
      .references(() => agentInstance.id, { onDelete: "cascade" }),
    level: text("level", { enum: logLevels }).notNull(),
    source: text("source", { enum: logSources }).notNull(),
    message: text("message").notNull(),
    metadata: json<Record<string, unknown>>("metadata"),
    createdAt: createdAt(),
  },
  (t) => [
    index("instance_log_instance_created_idx").on(t.instanceId, t.createdAt, t.id),
    index("instance_log_agent_created_idx").on(t.agentId, t.createdAt, t.id),
    index("instance_log_created_idx").on(t.createdAt),
  ],
);

// ---------------------------------------------------------------------------------------------
// Idempotency keys
// ---------------------------------------------------------------------------------------------
/**
 * One row per `Idempotency-Key` a caller sent with a POST or PATCH: claimed (no `status`) while the first
 * request runs, then holding its response for replay. `scope` is the tenant (or `-` outside tenant routes)
 * and the caller; rows older than 24 hours are deleted by the cleanup pass.
 */
export const idempotencyKey = sqliteTable(
  "idempotency_key",
  {
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    /** SHA-256 of method, path with query and body bytes: the same key with another request is refused. */
    requestHash: bytes("request_hash").notNull(),
    /** Null while the first request is in flight. */
    status: integer("status"),
    contentType: text("content_type"),
    body: bytes("body"),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_key_created_idx").on(t.createdAt)],
);
