/**
 * The audit log: every change to members, roles, grants, credentials, providers, wallets, git tokens and
 * agent definitions writes exactly one entry (who, what, from where, request id); a refused request writes
 * none; entries outlive their object; the log is the tenant's own, filtered and paginated.
 */
import { describe, expect, it } from "vitest";
import { type ApiResponse, addMember, api, createTenant, expectError, type TestTenant, unique } from "./support/api";

const base = (t: TestTenant) => `/api/tenants/${t.id}`;
type Entry = Record<string, any>;

async function auditLog(t: TestTenant, query = "", token = t.owner.token): Promise<Entry[]> {
  const res = await api(`${base(t)}/audit-log?limit=100${query}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data;
}

/** Sends a request under a fresh request id; returns the response and the entries that id wrote. */
async function traced(t: TestTenant, path: string, options: Parameters<typeof api>[1] = {}) {
  const requestId = unique("req-");
  const res = await api(path, { token: t.owner.token, ...options, headers: { "x-request-id": requestId } });
  const entries = (await auditLog(t)).filter((e) => e.requestId === requestId);
  return { res, entries, requestId };
}

/** Exactly one entry, with this action on this object, by the tenant's owner. */
function expectOne(
  { res, entries, requestId }: { res: ApiResponse; entries: Entry[]; requestId: string },
  t: TestTenant,
  action: string,
  resource: { type: string; id?: string },
) {
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  expect(entries).toHaveLength(1);
  const entry = entries[0] as Entry;
  expect(entry).toMatchObject({
    tenantId: t.id,
    action,
    resourceType: resource.type,
    actorPrincipalId: t.ownerPrincipalId,
    actorUserId: t.owner.userId,
    requestId,
  });
  if (resource.id) expect(entry.resourceId).toBe(resource.id);
  return entry;
}

describe("audit log entries", () => {
  it("records grants, roles and members, with actor, address and user agent", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const grant = await traced(t, `${base(t)}/grants`, {
      body: { principalId: member.principalId, resource: "agent:*", action: "read", effect: "deny" },
    });
    const entry = expectOne(grant, t, "grant.create", { type: "grant", id: grant.res.body.id });
    expect(entry.changes).toEqual({
      principalId: member.principalId,
      resource: "agent:*",
      action: "read",
      effect: "deny",
    });
    const grantId = grant.res.body.id;
    expectOne(
      await traced(t, `${base(t)}/grants/${grantId}`, { method: "PATCH", body: { effect: "ask" } }),
      t,
      "grant.update",
      { type: "grant", id: grantId },
    );
    expectOne(await traced(t, `${base(t)}/grants/${grantId}`, { method: "DELETE" }), t, "grant.delete", {
      type: "grant",
      id: grantId,
    });

    const role = await traced(t, `${base(t)}/roles`, { body: { name: unique("role-") } });
    const roleId = role.res.body.id;
    expectOne(role, t, "role.create", { type: "role", id: roleId });
    expectOne(
      await traced(t, `${base(t)}/roles/${roleId}`, { method: "PATCH", body: { description: "x" } }),
      t,
      "role.update",
      { type: "role", id: roleId },
    );
    const assignment = `${base(t)}/principals/${member.principalId}/roles/${roleId}`;
    const assigned = expectOne(await traced(t, assignment, { method: "POST" }), t, "role.assign", {
      type: "principal",
      id: member.principalId,
    });
    expect(assigned.changes).toEqual({ roleId });
    expectOne(await traced(t, assignment, { method: "DELETE" }), t, "role.unassign", { type: "principal" });
    expectOne(await traced(t, `${base(t)}/roles/${roleId}`, { method: "DELETE" }), t, "role.delete", {
      type: "role",
      id: roleId,
    });

    const suspended = await traced(t, `${base(t)}/principals/${member.principalId}`, {
      method: "PATCH",
      body: { status: "suspended" },
    });
    expect(expectOne(suspended, t, "principal.update", { type: "principal" }).changes).toEqual({ status: "suspended" });
    const deleted = await traced(t, `${base(t)}/principals/${member.principalId}`, { method: "DELETE" });
    expectOne(deleted, t, "principal.delete", { type: "principal", id: member.principalId });

    const from = await api(`${base(t)}/roles`, {
      token: t.owner.token,
      body: { name: unique("role-") },
      headers: { "cf-connecting-ip": "203.0.113.9", "user-agent": "audit-test/1.0" },
    });
    const [withAddress] = await auditLog(t, `&resourceId=${from.body.id}`);
    expect(withAddress).toMatchObject({ ip: "203.0.113.9", userAgent: "audit-test/1.0" });
  });

  it("records invitations in the inviting tenant, and their acceptance by the invited user", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const entries = await auditLog(t, `&resourceId=${member.principalId}`);
    expect(entries.map((e) => e.action)).toEqual(["principal.accept", "principal.invite"]);
    expect(entries[0]).toMatchObject({ actorPrincipalId: member.principalId, actorUserId: member.userId });
    expect(entries[1]).toMatchObject({ actorPrincipalId: t.ownerPrincipalId, changes: { email: member.email } });
  });

  it("records providers, credentials (never their secrets) and wallets with their transactions", async () => {
    const t = await createTenant();
    const provider = await traced(t, `${base(t)}/providers`, {
      body: { name: unique("p"), plugin: "openai", metadata: { baseURL: "https://api.example.test/v1" } },
    });
    const providerId = provider.res.body.id;
    expectOne(provider, t, "provider.create", { type: "provider", id: providerId });
    expectOne(
      await traced(t, `${base(t)}/providers/${providerId}`, { method: "PATCH", body: { plugin: "other" } }),
      t,
      "provider.update",
      { type: "provider", id: providerId },
    );

    const secret = `sk-${unique()}`;
    const credential = await traced(t, `${base(t)}/credentials`, {
      body: { type: "api_key", providerId, name: unique("c"), secret },
    });
    const credentialId = credential.res.body.id;
    expectOne(credential, t, "credential.create", { type: "credential", id: credentialId });
    const rotated = await traced(t, `${base(t)}/credentials/${credentialId}`, {
      method: "PATCH",
      body: { secret: `${secret}-2` },
    });
    expect(expectOne(rotated, t, "credential.update", { type: "credential" }).changes).toEqual({ secret: "changed" });
    expect(JSON.stringify(await auditLog(t))).not.toContain(secret);
    expectOne(await traced(t, `${base(t)}/credentials/${credentialId}`, { method: "DELETE" }), t, "credential.delete", {
      type: "credential",
      id: credentialId,
    });
    expectOne(await traced(t, `${base(t)}/providers/${providerId}`, { method: "DELETE" }), t, "provider.delete", {
      type: "provider",
      id: providerId,
    });

    const wallet = await traced(t, `${base(t)}/wallets`, {
      body: { name: "Budget", backendType: "credits", currency: "USD" },
    });
    const walletId = wallet.res.body.id;
    expectOne(wallet, t, "wallet.create", { type: "wallet", id: walletId });
    expectOne(
      await traced(t, `${base(t)}/wallets/${walletId}`, { method: "PATCH", body: { name: "Ops" } }),
      t,
      "wallet.update",
      { type: "wallet", id: walletId },
    );
    const credit = { direction: "inbound", amount: "5", requestId: unique("r") };
    const txn = await traced(t, `${base(t)}/wallets/${walletId}/transactions`, { body: credit });
    const entry = expectOne(txn, t, "transaction.create", { type: "transaction", id: txn.res.body.id });
    expect(entry.changes).toMatchObject({ walletId, direction: "inbound", amount: "5" });
    const replayed = await traced(t, `${base(t)}/wallets/${walletId}/transactions`, { body: credit });
    expect(replayed.res.status).toBe(200);
    expect(replayed.entries).toEqual([]);
    expectOne(await traced(t, `${base(t)}/wallets/${walletId}`, { method: "DELETE" }), t, "wallet.delete", {
      type: "wallet",
      id: walletId,
    });
  });

  it("records agent definitions, their asset attachments and git tokens", async () => {
    const t = await createTenant();
    const agent = await traced(t, `${base(t)}/agents/definitions`, { body: { name: "Agent" } });
    const agentId = agent.res.body.id;
    expect(expectOne(agent, t, "agent.create", { type: "agent", id: agentId }).changes).toMatchObject({
      fields: ["name"],
      version: "1",
    });
    expectOne(
      await traced(t, `${base(t)}/agents/definitions/${agentId}`, { method: "PATCH", body: { description: "d" } }),
      t,
      "agent.update",
      { type: "agent", id: agentId },
    );
    expectOne(
      await traced(t, `${base(t)}/agents/definitions/${agentId}/rollback`, { body: { version: "1" } }),
      t,
      "agent.rollback",
      { type: "agent", id: agentId },
    );
    const repo = await api(`${base(t)}/assets`, { token: t.owner.token, body: { kind: "repo", name: unique("r-") } });
    expect(repo.status, JSON.stringify(repo.body)).toBe(201);
    const attachments = `${base(t)}/agents/definitions/${agentId}/assets`;
    expectOne(await traced(t, attachments, { body: { assetId: repo.body.id } }), t, "agent.asset_attach", {
      type: "agent",
      id: agentId,
    });
    expectOne(await traced(t, `${attachments}/${repo.body.id}`, { method: "DELETE" }), t, "agent.asset_detach", {
      type: "agent",
    });

    const mint = {
      name: unique("tok-"),
      resource: `asset:${repo.body.id}`,
      refPattern: "refs/heads/**",
      actions: ["can_read"],
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    };
    const token = await traced(t, `${base(t)}/git-tokens`, { body: mint });
    const tokenEntry = expectOne(token, t, "git_token.create", { type: "git_token", id: token.res.body.id });
    expect(JSON.stringify(tokenEntry)).not.toContain(token.res.body.secret);
    expectOne(
      await traced(t, `${base(t)}/git-tokens/${token.res.body.id}`, { method: "DELETE" }),
      t,
      "git_token.revoke",
      {
        type: "git_token",
      },
    );
    const personal = await traced(t, "/api/me/git-tokens", { body: { ...mint, name: unique("tok-") } });
    expectOne(personal, t, "git_token.create", { type: "git_token", id: personal.res.body.id });

    expectOne(await traced(t, `${base(t)}/agents/definitions/${agentId}`, { method: "DELETE" }), t, "agent.delete", {
      type: "agent",
      id: agentId,
    });
  });

  it("writes nothing for a refused, invalid or missing-object request", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const before = (await auditLog(t)).length;
    const body = { principalId: member.principalId, resource: "agent:*", action: "read", effect: "allow" };
    expectError(await api(`${base(t)}/grants`, { token: member.token, body }), 403, "forbidden");
    expectError(
      await api(`${base(t)}/grants`, { token: t.owner.token, body: { ...body, effect: "maybe" } }),
      400,
      "validation_failed",
    );
    expectError(
      await api(`${base(t)}/grants/grt_0123456789abcdef0123456789abcdef`, { method: "DELETE", token: t.owner.token }),
      404,
      "not_found",
    );
    expectError(
      await api(`${base(t)}/roles/rol_0123456789abcdef0123456789abcdef`, {
        method: "PATCH",
        token: t.owner.token,
        body: { name: "x" },
      }),
      404,
      "not_found",
    );
    expect(await auditLog(t)).toHaveLength(before);
  });

  it("keeps entries when the object is deleted", async () => {
    const t = await createTenant();
    const role = await api(`${base(t)}/roles`, { token: t.owner.token, body: { name: unique("role-") } });
    await api(`${base(t)}/roles/${role.body.id}`, { method: "DELETE", token: t.owner.token });
    const member = await addMember(t);
    await api(`${base(t)}/principals/${member.principalId}`, { method: "DELETE", token: t.owner.token });
    expect((await auditLog(t, `&resourceId=${role.body.id}`)).map((e) => e.action)).toEqual([
      "role.delete",
      "role.create",
    ]);
    // The actor is gone too; what they did stays.
    const byMember = await auditLog(t, `&actorPrincipalId=${member.principalId}`);
    expect(byMember.map((e) => e.action)).toEqual(["principal.accept"]);
  });
});

describe("GET /audit-log", () => {
  it("filters, pages newest first and keeps to the tenant", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const names = [unique("a-"), unique("b-"), unique("c-")];
    for (const name of names) await api(`${base(t)}/roles`, { token: t.owner.token, body: { name } });
    const created = await auditLog(t, "&action=role.create");
    expect(created.map((e) => e.changes.name)).toEqual([...names].reverse());
    expect(await auditLog(t, "&resourceType=role&action=role.delete")).toEqual([]);

    const first = await api(`${base(t)}/audit-log?action=role.create&limit=2`, { token: t.owner.token });
    expect(first.body.data).toHaveLength(2);
    const second = await api(`${base(t)}/audit-log?action=role.create&limit=2&cursor=${first.body.nextCursor}`, {
      token: t.owner.token,
    });
    expect(second.body).toMatchObject({ nextCursor: null, data: [{ changes: { name: names[0] } }] });

    const future = new Date(Date.now() + 60_000).toISOString();
    expect(await auditLog(t, `&since=${encodeURIComponent(future)}`)).toEqual([]);
    expect(await auditLog(t, `&until=${encodeURIComponent(future)}&action=role.create`)).toHaveLength(3);
    expect(await auditLog(t, `&actorPrincipalId=${t.ownerPrincipalId}&action=role.create`)).toHaveLength(3);

    expect(JSON.stringify(await auditLog(other))).not.toContain(t.id);
    expectError(await api(`${base(t)}/audit-log`, { token: other.owner.token }), 404, "not_found");
    expectError(await api(`${base(t)}/audit-log`), 401, "unauthorized");
  });

  it("is for owners and admins (or a grant of audit manage), and answers bad filters with 400", async () => {
    const t = await createTenant();
    const bare = await addMember(t, null);
    expectError(await api(`${base(t)}/audit-log`, { token: bare.token }), 403, "forbidden");
    // Members read everything else of the tenant, not who did what.
    const member = await addMember(t, "member");
    expectError(await api(`${base(t)}/audit-log`, { token: member.token }), 403, "forbidden");
    expect((await api(`${base(t)}/agents/definitions`, { token: member.token })).status).toBe(200);
    const admin = await addMember(t, "admin");
    expect((await api(`${base(t)}/audit-log`, { token: admin.token })).status).toBe(200);
    const granted = await api(`${base(t)}/grants`, {
      token: t.owner.token,
      body: { principalId: member.principalId, resource: "audit:*", action: "manage", effect: "allow" },
    });
    expect(granted.status, JSON.stringify(granted.body)).toBe(201);
    expect((await api(`${base(t)}/audit-log`, { token: member.token })).status).toBe(200);
    for (const query of [
      "since=yesterday",
      "until=2026-13-01",
      "limit=0",
      "action=a%20b",
      "since=2027-01-02T00:00:00Z&until=2027-01-01T00:00:00Z",
    ]) {
      expectError(await api(`${base(t)}/audit-log?${query}`, { token: t.owner.token }), 400, "validation_failed");
    }
    expectError(await api(`${base(t)}/audit-log?cursor=nope`, { token: t.owner.token }), 400, "invalid_cursor");
  });
});
