/**
 * The data model on real local D1: migrations apply from zero, every table can be written and read
 * through drizzle, and the constraints the API relies on (uniques, cascades) hold.
 */
import { env } from "cloudflare:workers";
import { eq, getTableName, is, sql } from "drizzle-orm";
import { SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import * as s from "../../src/db/schema";
import { newId } from "../../src/lib/ids";

const db = getDb(env);
const tables = (Object.values(s) as unknown[]).filter((v): v is SQLiteTable => is(v, SQLiteTable));

describe("migrations", () => {
  it("create every table of the schema in a database that started empty", async () => {
    const applied = await env.DB.prepare("SELECT name FROM d1_migrations ORDER BY id").all<{ name: string }>();
    expect(applied.results.map((r) => r.name)).toEqual(env.TEST_MIGRATIONS.map((m) => m.name));
    const rows = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
    const present = new Set(rows.results.map((r) => r.name));
    const expected = tables.map((t) => getTableName(t));
    expect(expected.length).toBeGreaterThanOrEqual(28);
    for (const name of expected) expect(present, `table ${name}`).toContain(name);
  });

  it("enforce foreign keys", async () => {
    await expect(
      db.insert(s.principal).values({ id: newId("principal"), tenantId: "tnt_missing", kind: "user", refId: "u" }),
    ).rejects.toThrow();
  });
});

/** Writes one row into every table, in dependency order, and reads each back. */
async function seedEverything() {
  const t0 = new Date("2026-11-25T10:00:00.123Z");
  const ids = {
    user: `usr_${crypto.randomUUID()}`,
    tenant: newId("tenant"),
    child: newId("tenant"),
    principal: newId("principal"),
    agentPrincipal: newId("principal"),
    role: newId("role"),
    grant: newId("grant"),
    agent: newId("agent"),
    version: newId("agentVersion"),
    provider: newId("provider"),
    oauthClient: newId("oauthClient"),
    credential: newId("credential"),
    offering: newId("offering"),
    wallet: newId("wallet"),
    transaction: newId("transaction"),
    asset: newId("asset"),
    agentAsset: newId("agentAsset"),
    gitToken: newId("gitToken"),
    sidecar: newId("sidecar"),
    session: newId("session"),
    instance: newId("instance"),
    turn: newId("inferenceTurn"),
    part: newId("turnPart"),
    mail: newId("sessionMail"),
    approval: newId("approval"),
    trust: newId("federationTrust"),
  };
  const slug = ids.tenant.slice(4, 16);
  await db.insert(s.user).values({ id: ids.user, name: "Ada", email: `${ids.user}@example.test` });
  await db
    .insert(s.session)
    .values({ id: crypto.randomUUID(), userId: ids.user, token: crypto.randomUUID(), expiresAt: t0 });
  await db.insert(s.account).values({
    id: crypto.randomUUID(),
    userId: ids.user,
    accountId: ids.user,
    providerId: "credential",
    password: "hash",
  });
  await db.insert(s.verification).values({ id: crypto.randomUUID(), identifier: "x", value: "y", expiresAt: t0 });
  await db.insert(s.tenant).values([
    { id: ids.tenant, name: "Acme", slug, domain: `${slug}.localhost`, config: { plan: "pro" }, createdAt: t0 },
    { id: ids.child, name: "Acme EU", slug: `${slug}-eu`, domain: `${slug}-eu.localhost`, parentId: ids.tenant },
  ]);
  await db
    .insert(s.federationTrust)
    .values({ id: ids.trust, tenantId: ids.tenant, targetTenantId: ids.child, direction: "bilateral" });
  await db.insert(s.principal).values([
    { id: ids.principal, tenantId: ids.tenant, kind: "user", refId: ids.user },
    { id: ids.agentPrincipal, tenantId: ids.tenant, kind: "agent", refId: ids.instance },
  ]);
  await db.insert(s.role).values({ id: ids.role, tenantId: ids.tenant, name: "owner", isSystem: true });
  await db.insert(s.principalRole).values({ principalId: ids.principal, roleId: ids.role });
  await db.insert(s.grant).values({
    id: ids.grant,
    tenantId: ids.tenant,
    roleId: ids.role,
    resource: "*",
    action: "*",
    effect: "allow",
    origin: "system",
    conditions: { time_window: { after: "09:00", before: "17:00", timezone: "UTC" } },
  });
  await db.insert(s.agent).values({
    id: ids.agent,
    tenantId: ids.tenant,
    creatorPrincipalId: ids.principal,
    name: "Helper",
    systemPrompt: "Be kind",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "openai", source: "tenant" }],
  });
  await db.insert(s.agentVersion).values({ id: ids.version, agentId: ids.agent, version: "1", snapshot: null });
  await db.insert(s.agentRole).values({ agentId: ids.agent, roleId: ids.role });
  await db.insert(s.provider).values({
    id: ids.provider,
    tenantId: ids.tenant,
    name: "openai",
    plugin: "openai",
    scopes: ["chat"],
    metadata: { baseURL: "http://127.0.0.1:1" },
  });
  await db.insert(s.oauthClient).values({
    id: ids.oauthClient,
    tenantId: ids.tenant,
    providerId: ids.provider,
    name: "app",
    clientId: "cid",
    clientSecretCiphertext: new Uint8Array([1, 2, 3]),
  });
  await db.insert(s.credential).values({
    id: ids.credential,
    tenantId: ids.tenant,
    providerId: ids.provider,
    name: "key",
    type: "api_key",
    secretCiphertext: new Uint8Array([9, 8, 7]),
  });
  await db.insert(s.offering).values({
    id: ids.offering,
    agentId: ids.agent,
    tenantId: ids.tenant,
    name: "Summaries",
    pricing: { base: { amount: "0.10", currency: "USD" } },
  });
  await db
    .insert(s.wallet)
    .values({ id: ids.wallet, tenantId: ids.tenant, name: "main", backendType: "credits", currency: "USD" });
  await db.insert(s.transaction).values({
    id: ids.transaction,
    walletId: ids.wallet,
    agentId: ids.agent,
    direction: "outbound",
    amount: "0.10",
    currency: "USD",
  });
  await db
    .insert(s.asset)
    .values({ id: ids.asset, tenantId: ids.tenant, kind: "skill", name: "greet", creatorPrincipalId: ids.principal });
  await db.insert(s.agentAsset).values({ id: ids.agentAsset, agentId: ids.agent, assetId: ids.asset });
  await db.insert(s.gitToken).values({
    id: ids.gitToken,
    userId: ids.user,
    tenantId: ids.tenant,
    name: "ci",
    kind: "pat",
    tokenHash: crypto.getRandomValues(new Uint8Array(32)),
    resource: `asset:${ids.asset}`,
    refPattern: "refs/heads/*",
    actions: ["createPack", "resolveRef"],
    expiresAt: t0,
  });
  await db.insert(s.sidecar).values({
    id: ids.sidecar,
    tenantId: ids.tenant,
    name: "local",
    secretHash: crypto.getRandomValues(new Uint8Array(32)),
  });
  await db
    .insert(s.agentSession)
    .values({ id: ids.session, tenantId: ids.tenant, agentId: ids.agent, principalId: ids.principal });
  await db.insert(s.agentInstance).values({
    id: ids.instance,
    agentId: ids.agent,
    tenantId: ids.tenant,
    principalId: ids.agentPrincipal,
    address: `${ids.instance}@${slug}.localhost`,
    versionId: ids.version,
    sessionId: ids.session,
    sidecarId: ids.sidecar,
    walletId: ids.wallet,
  });
  await db.insert(s.sessionAsset).values({
    instanceId: ids.instance,
    agentAssetId: ids.agentAsset,
    mountPath: "skills/greet/",
    assetPackSha: "ab",
    sourceCommitSha: "cd",
  });
  await db.insert(s.inferenceTurn).values({
    id: ids.turn,
    sessionId: ids.session,
    instanceId: ids.instance,
    tenantId: ids.tenant,
    model: "echo",
    startedAt: t0,
  });
  await db.insert(s.turnPart).values({
    id: ids.part,
    turnId: ids.turn,
    sessionId: ids.session,
    type: "text",
    content: "hi",
    metadata: { k: 1 },
    ordinal: 0,
  });
  await db.insert(s.sessionMail).values({
    id: ids.mail,
    sessionId: ids.session,
    instanceId: ids.instance,
    tenantId: ids.tenant,
    direction: "inbound",
    raw: new TextEncoder().encode("Subject: hi\r\n\r\nbody"),
    size: 19,
  });
  await db.insert(s.approval).values({
    id: ids.approval,
    tenantId: ids.tenant,
    principalId: ids.agentPrincipal,
    agentId: ids.agent,
    instanceId: ids.instance,
    resource: "tool:shell",
    action: "write",
  });
  await db.insert(s.auditLog).values({
    id: newId("auditEntry"),
    tenantId: ids.tenant,
    action: "grant.create",
    resourceType: "grant",
    resourceId: "grt_gone",
    actorPrincipalId: ids.principal,
    actorUserId: ids.user,
    changes: { effect: "allow" },
    requestId: "req-1",
  });
  await db.insert(s.instanceLog).values({
    id: newId("instanceLog"),
    tenantId: ids.tenant,
    agentId: ids.agent,
    instanceId: ids.instance,
    level: "info",
    source: "hub",
    message: "Launching on sidecar",
    metadata: { sidecarId: "sdc_x" },
  });
  await db.insert(s.idempotencyKey).values({
    scope: `${ids.tenant}/user:${ids.user}`,
    key: crypto.randomUUID(),
    requestHash: new Uint8Array(32),
    status: 201,
    contentType: "application/json",
    body: new TextEncoder().encode("{}"),
  });
  const repositoryId = `asset/${ids.asset}`;
  await db.insert(s.gitRepository).values({ id: repositoryId, tenantId: ids.tenant });
  await db.insert(s.gitRef).values({ repositoryId, name: "refs/heads/main", oid: "a".repeat(40) });
  await db
    .insert(s.gitPack)
    .values({ id: "b".repeat(40), repositoryId, objectCount: 3, packBytes: 300, indexBytes: 1100 });
  return { ids, t0 };
}

describe("every table", () => {
  it("can be written and read back through drizzle", async () => {
    const { ids, t0 } = await seedEverything();
    for (const table of tables) {
      const [row] = await db.select({ n: sql<number>`count(*)` }).from(table);
      expect(row?.n, getTableName(table)).toBeGreaterThan(0);
    }
    const tenant = await db.query.tenant.findFirst({ where: eq(s.tenant.id, ids.tenant) });
    expect(tenant?.createdAt.getTime()).toBe(t0.getTime()); // millisecond precision survives
    expect(tenant?.config).toEqual({ plan: "pro" });
    const grant = await db.query.grant.findFirst({ where: eq(s.grant.id, ids.grant) });
    expect(grant?.conditions).toEqual({ time_window: { after: "09:00", before: "17:00", timezone: "UTC" } });
    const cred = await db.query.credential.findFirst({ where: eq(s.credential.id, ids.credential) });
    expect([...(cred?.secretCiphertext ?? [])]).toEqual([9, 8, 7]);
    const mail = await db.query.sessionMail.findFirst({ where: eq(s.sessionMail.id, ids.mail) });
    expect(new TextDecoder().decode(mail?.raw ?? new Uint8Array())).toBe("Subject: hi\r\n\r\nbody");
    const token = await db.query.gitToken.findFirst({ where: eq(s.gitToken.id, ids.gitToken) });
    expect(token?.actions).toEqual(["createPack", "resolveRef"]);
    const user = await db.query.user.findFirst({ where: eq(s.user.id, ids.user) });
    expect(user?.emailVerified).toBe(false);
  });

  it("cascade away with their tenant", async () => {
    const { ids } = await seedEverything();
    // The child tenant references the parent without cascade: detach it first.
    await db.update(s.tenant).set({ parentId: null }).where(eq(s.tenant.id, ids.child));
    // Principal references from agent/instance/session are deliberately not cascading; the tenant
    // delete removes them all in one statement.
    await db.delete(s.tenant).where(eq(s.tenant.id, ids.tenant));
    for (const [table, id] of [
      [s.principal, ids.principal],
      [s.agent, ids.agent],
      [s.agentInstance, ids.instance],
      [s.turnPart, ids.part],
      [s.sessionMail, ids.mail],
    ] as const) {
      const rows = await db.select().from(table).where(eq(table.id, id));
      expect(rows, getTableName(table)).toHaveLength(0);
    }
  });
});

/** drizzle wraps driver errors: the SQLite message is on the cause chain. */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const messages: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = e.cause) messages.push(e.message);
    return messages.join(" <- ");
  }
  throw new Error("expected the write to fail");
}

describe("constraints", () => {
  it("rejects a second active git token with the same name, but allows it once the first is revoked", async () => {
    const { ids } = await seedEverything();
    const token = () => ({
      id: newId("gitToken"),
      userId: ids.user,
      name: "ci",
      kind: "pat" as const,
      tokenHash: crypto.getRandomValues(new Uint8Array(32)),
      resource: "*",
      refPattern: "**",
      actions: ["createPack"],
      expiresAt: new Date(),
    });
    await expect(db.insert(s.gitToken).values(token())).rejects.toThrow();
    await db.update(s.gitToken).set({ revokedAt: new Date() }).where(eq(s.gitToken.id, ids.gitToken));
    await db.insert(s.gitToken).values(token());
  });

  it("rejects duplicate slugs, role names and provider names within a tenant", async () => {
    const { ids } = await seedEverything();
    const tenant = await db.query.tenant.findFirst({ where: eq(s.tenant.id, ids.tenant) });
    expect(
      await failure(
        db
          .insert(s.tenant)
          .values({ id: newId("tenant"), name: "x", slug: tenant?.slug ?? "", domain: "other.localhost" }),
      ),
    ).toMatch(/UNIQUE constraint failed: tenant.slug/);
    expect(await failure(db.insert(s.role).values({ id: newId("role"), tenantId: ids.tenant, name: "owner" }))).toMatch(
      /UNIQUE constraint failed: role.tenant_id, role.name/,
    );
    expect(
      await failure(
        db.insert(s.provider).values({ id: newId("provider"), tenantId: ids.tenant, name: "openai", plugin: "x" }),
      ),
    ).toMatch(/UNIQUE constraint failed: provider.tenant_id, provider.name/);
  });
});
