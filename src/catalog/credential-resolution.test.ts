/**
 * Credential resolution against real D1. Rows are inserted directly (this is a domain-function test);
 * every secret is really encrypted, and `ok` outcomes really decrypt it.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getDb } from "../db/client";
import { credential, principal, provider, tenant } from "../db/schema";
import { newId } from "../lib/ids";
import { secretBoxFor, secretContext } from "../secrets/encryption";
import { type CredentialOutcome, type ResolvableRequirement, resolveCredentials } from "./credential-resolution";

const db = getDb(env);
const secrets = secretBoxFor("resolution-test-key-0123456789abcdef");
const BASE_URL = "https://llm.example.test/v1";

async function makeTenant(parentId: string | null = null): Promise<string> {
  const id = newId("tenant");
  const slug = `res-${id.slice(4, 16)}`;
  await db.insert(tenant).values({ id, name: slug, slug, domain: `${slug}.localhost`, parentId });
  return id;
}

async function makePrincipal(tenantId: string): Promise<string> {
  const id = newId("principal");
  await db.insert(principal).values({ id, tenantId, kind: "user", refId: `user-${id}`, status: "active" });
  return id;
}

async function makeProvider(
  tenantId: string,
  name = "openai",
  metadata: Record<string, unknown> | null = { baseURL: BASE_URL },
): Promise<string> {
  const id = newId("provider");
  await db.insert(provider).values({ id, tenantId, name, plugin: "openai-compatible", metadata });
  return id;
}

type CredentialOptions = Partial<typeof credential.$inferInsert> & { secret?: string; box?: typeof secrets };

async function makeCredential(tenantId: string, providerId: string, options: CredentialOptions = {}) {
  const id = newId("credential");
  const { secret = `sk-${id}`, box = secrets, ...rest } = options;
  await db.insert(credential).values({
    id,
    tenantId,
    providerId,
    name: `cred-${id.slice(4, 16)}`,
    type: "api_key",
    secretCiphertext: await box.encrypt(secret, secretContext.credentialSecret(id)),
    ...rest,
  });
  return { id, secret };
}

const tenantReq: ResolvableRequirement = { providerName: "openai", source: "tenant" };

async function resolveOne(
  tenantId: string,
  requirement: ResolvableRequirement = tenantReq,
  principals: { creator?: string | null; invoker?: string | null } = {},
): Promise<CredentialOutcome> {
  const [outcome] = await resolveCredentials(db, {
    tenantId,
    requirements: [requirement],
    creatorPrincipalId: principals.creator,
    invokerPrincipalId: principals.invoker,
    secrets,
  });
  if (!outcome) throw new Error("no outcome");
  return outcome;
}

const past = () => new Date(Date.now() - 60_000);
const future = () => new Date(Date.now() + 3_600_000);

describe("resolveCredentials", () => {
  it("ok: the tenant's own credential, decrypted, with its provider", async () => {
    const t = await makeTenant();
    const prv = await makeProvider(t);
    const cred = await makeCredential(t, prv, { scopes: ["chat"], expiresAt: future() });
    const outcome = await resolveOne(t);
    expect(outcome).toMatchObject({
      outcome: "ok",
      credentialId: cred.id,
      credentialTenantId: t,
      secret: cred.secret,
      scopes: ["chat"],
      provider: { id: prv, tenantId: t, name: "openai", plugin: "openai-compatible", baseURL: BASE_URL },
    });
  });

  it("provider_missing, provider_misconfigured and credential_missing", async () => {
    const t = await makeTenant();
    expect(await resolveOne(t)).toMatchObject({ outcome: "provider_missing" });
    const bare = await makeProvider(t, "bare", { note: "no baseURL" });
    await makeCredential(t, bare);
    expect(await resolveOne(t, { providerName: "bare", source: "tenant" })).toMatchObject({
      outcome: "provider_misconfigured",
      providerId: bare,
    });
    await makeProvider(t, "nometa", null);
    expect(await resolveOne(t, { providerName: "nometa", source: "tenant" })).toMatchObject({
      outcome: "provider_misconfigured",
    });
    const prv = await makeProvider(t);
    const missing = await resolveOne(t);
    expect(missing).toMatchObject({ outcome: "credential_missing", providerId: prv });
    expect(missing.outcome === "credential_missing" && missing.message).toBe(
      'No credential found for provider "openai" (source: tenant)',
    );
  });

  it("inherits the parent's provider and credential, and prefers the nearest tenant's credential", async () => {
    const parent = await makeTenant();
    const child = await makeTenant(parent);
    const grandchild = await makeTenant(child);
    const prv = await makeProvider(parent);
    const parentCred = await makeCredential(parent, prv);
    expect(await resolveOne(grandchild)).toMatchObject({
      outcome: "ok",
      credentialId: parentCred.id,
      credentialTenantId: parent,
      secret: parentCred.secret,
      provider: { id: prv, tenantId: parent },
    });
    // A credential of the child against the inherited provider is nearer, so it wins (no ambiguity).
    const childCred = await makeCredential(child, prv);
    expect(await resolveOne(grandchild)).toMatchObject({ outcome: "ok", credentialId: childCred.id });
    expect(await resolveOne(parent)).toMatchObject({ outcome: "ok", credentialId: parentCred.id });
  });

  it("a child's provider of the same name shadows the parent's, and with it the parent's credentials", async () => {
    const parent = await makeTenant();
    const child = await makeTenant(parent);
    const parentPrv = await makeProvider(parent);
    await makeCredential(parent, parentPrv);
    const childPrv = await makeProvider(child, "openai", { baseURL: "https://child.example.test" });
    expect(await resolveOne(child)).toMatchObject({ outcome: "credential_missing", providerId: childPrv });
    const childCred = await makeCredential(child, childPrv);
    expect(await resolveOne(child)).toMatchObject({
      outcome: "ok",
      credentialId: childCred.id,
      provider: { id: childPrv, baseURL: "https://child.example.test" },
    });
    // The parent itself still resolves its own provider.
    expect(await resolveOne(parent)).toMatchObject({ outcome: "ok", provider: { id: parentPrv } });
  });

  it("credential_error when two usable credentials tie; name and scopes narrow the match", async () => {
    const t = await makeTenant();
    const prv = await makeProvider(t);
    const a = await makeCredential(t, prv, { name: "key-a", scopes: ["chat", "embeddings"] });
    const b = await makeCredential(t, prv, { name: "key-b", scopes: ["chat"] });
    const tie = await resolveOne(t);
    expect(tie).toMatchObject({ outcome: "credential_error", reason: "ambiguous", providerId: prv });
    expect(tie.outcome === "credential_error" && [...tie.credentialIds].sort()).toEqual([a.id, b.id].sort());
    expect(await resolveOne(t, { ...tenantReq, name: "key-b" })).toMatchObject({ outcome: "ok", credentialId: b.id });
    expect(await resolveOne(t, { ...tenantReq, scopes: ["embeddings"] })).toMatchObject({
      outcome: "ok",
      credentialId: a.id,
    });
    expect(await resolveOne(t, { ...tenantReq, scopes: ["chat", "images"] })).toMatchObject({
      outcome: "credential_missing",
    });
    expect(await resolveOne(t, { ...tenantReq, name: "key-z" })).toMatchObject({ outcome: "credential_missing" });
  });

  it("the source picks the owner: tenant (no principal), creator or invoker", async () => {
    const t = await makeTenant();
    const prv = await makeProvider(t);
    const creator = await makePrincipal(t);
    const invoker = await makePrincipal(t);
    const creatorCred = await makeCredential(t, prv, { principalId: creator });
    const invokerCred = await makeCredential(t, prv, { principalId: invoker });
    const principals = { creator, invoker };
    expect(await resolveOne(t, tenantReq, principals)).toMatchObject({ outcome: "credential_missing" });
    expect(await resolveOne(t, { providerName: "openai", source: "creator" }, principals)).toMatchObject({
      outcome: "ok",
      credentialId: creatorCred.id,
      secret: creatorCred.secret,
    });
    expect(await resolveOne(t, { providerName: "openai", source: "invoker" }, principals)).toMatchObject({
      outcome: "ok",
      credentialId: invokerCred.id,
    });
    const orgCred = await makeCredential(t, prv);
    expect(await resolveOne(t, tenantReq, principals)).toMatchObject({ outcome: "ok", credentialId: orgCred.id });
    // Someone else's credential is never the invoker's.
    const stranger = await makePrincipal(t);
    expect(await resolveOne(t, { providerName: "openai", source: "invoker" }, { invoker: stranger })).toMatchObject({
      outcome: "credential_missing",
    });
  });

  it("skipped when the source's principal is absent, or an optional requirement is unmet", async () => {
    const t = await makeTenant();
    expect(await resolveOne(t, { providerName: "openai", source: "creator" })).toMatchObject({
      outcome: "skipped",
      reason: "no_creator",
    });
    expect(await resolveOne(t, { providerName: "openai", source: "invoker" }, { invoker: null })).toMatchObject({
      outcome: "skipped",
      reason: "no_invoker",
    });
    expect(await resolveOne(t, { ...tenantReq, optional: true })).toMatchObject({
      outcome: "skipped",
      reason: "provider_missing",
    });
    const prv = await makeProvider(t);
    expect(await resolveOne(t, { ...tenantReq, optional: true })).toMatchObject({
      outcome: "skipped",
      reason: "credential_missing",
    });
    await makeCredential(t, prv, { status: "revoked" });
    expect(await resolveOne(t, { ...tenantReq, optional: true })).toMatchObject({
      outcome: "skipped",
      reason: "credential_revoked",
    });
    const cred = await makeCredential(t, prv);
    expect(await resolveOne(t, { ...tenantReq, optional: true })).toMatchObject({
      outcome: "ok",
      credentialId: cred.id,
    });
  });

  it("honours expiresAt and status: expired, revoked, error", async () => {
    const t = await makeTenant();
    const prv = await makeProvider(t);
    const expired = await makeCredential(t, prv, { expiresAt: past() });
    expect(await resolveOne(t)).toMatchObject({ outcome: "credential_expired", credentialId: expired.id });

    const t2 = await makeTenant();
    const prv2 = await makeProvider(t2);
    const marked = await makeCredential(t2, prv2, { status: "expired", expiresAt: future() });
    expect(await resolveOne(t2)).toMatchObject({ outcome: "credential_expired", credentialId: marked.id });

    const t3 = await makeTenant();
    const prv3 = await makeProvider(t3);
    const revoked = await makeCredential(t3, prv3, { status: "revoked" });
    expect(await resolveOne(t3)).toMatchObject({ outcome: "credential_revoked", credentialId: revoked.id });

    const t4 = await makeTenant();
    const prv4 = await makeProvider(t4);
    const broken = await makeCredential(t4, prv4, { status: "error" });
    expect(await resolveOne(t4)).toMatchObject({
      outcome: "credential_error",
      reason: "status_error",
      credentialIds: [broken.id],
    });
  });

  it("an unusable credential never ties with a usable one, and lets an ancestor's usable one through", async () => {
    const parent = await makeTenant();
    const child = await makeTenant(parent);
    const prv = await makeProvider(parent);
    const parentCred = await makeCredential(parent, prv);
    await makeCredential(child, prv, { expiresAt: past() });
    await makeCredential(child, prv, { status: "revoked" });
    expect(await resolveOne(child)).toMatchObject({ outcome: "ok", credentialId: parentCred.id });
    const fresh = await makeCredential(child, prv, { expiresAt: future() });
    expect(await resolveOne(child)).toMatchObject({ outcome: "ok", credentialId: fresh.id });
  });

  it("the nearest unusable credential explains a failure when nothing usable exists anywhere", async () => {
    const parent = await makeTenant();
    const child = await makeTenant(parent);
    const prv = await makeProvider(parent);
    await makeCredential(parent, prv, { status: "revoked" });
    const childExpired = await makeCredential(child, prv, { expiresAt: past() });
    expect(await resolveOne(child)).toMatchObject({ outcome: "credential_expired", credentialId: childExpired.id });
  });

  it("credential_error when the secret does not decrypt with the current key", async () => {
    const t = await makeTenant();
    const prv = await makeProvider(t);
    const foreign = await makeCredential(t, prv, { box: secretBoxFor("some-other-key-0123456789abcdef") });
    expect(await resolveOne(t)).toMatchObject({
      outcome: "credential_error",
      reason: "undecryptable",
      credentialIds: [foreign.id],
    });
  });

  it("resolves several requirements in order, one outcome each", async () => {
    const t = await makeTenant();
    const invoker = await makePrincipal(t);
    const prv = await makeProvider(t);
    await makeProvider(t, "anthropic");
    const cred = await makeCredential(t, prv);
    const outcomes = await resolveCredentials(db, {
      tenantId: t,
      requirements: [
        tenantReq,
        { providerName: "anthropic", source: "invoker" },
        { providerName: "mistral", source: "tenant" },
        { providerName: "openai", source: "creator" },
      ],
      invokerPrincipalId: invoker,
      secrets,
    });
    expect(outcomes.map((o) => o.outcome)).toEqual(["ok", "credential_missing", "provider_missing", "skipped"]);
    expect(outcomes[0]).toMatchObject({ credentialId: cred.id, secret: cred.secret });
    expect(await resolveCredentials(db, { tenantId: t, requirements: [], secrets })).toEqual([]);
  });
});
