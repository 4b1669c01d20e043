/** Grants: CRUD with target and escalation checks, their effect on access, and explained evaluation. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { grant } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { addMember, api, createTenant, expectError } from "./support/api";

const base = (tenantId: string) => `/api/tenants/${tenantId}`;
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe("grants CRUD", () => {
  it("creates, lists with names and filters, reads, edits and revokes a grant", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const created = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { principalId: member.principalId, resource: "agent:*", action: "manage", effect: "allow" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      principalId: member.principalId,
      principalName: member.name,
      roleId: null,
      origin: "role",
      conditions: null,
      expiresAt: null,
    });
    const id = created.body.id;
    const filtered = await api(`${base(t.id)}/grants?principalId=${member.principalId}`, { token: t.owner.token });
    expect(filtered.body.data.map((g: { id: string }) => g.id)).toEqual([id]);
    const byResource = await api(`${base(t.id)}/grants?resource=${encodeURIComponent("agent:*")}`, {
      token: t.owner.token,
    });
    expect(byResource.body.data.map((g: { id: string }) => g.id)).toEqual([id]);
    const denies = await api(`${base(t.id)}/grants?effect=deny`, { token: t.owner.token });
    expect(denies.body.data).toEqual([]);
    const byRole = await api(`${base(t.id)}/grants?roleId=${t.roles.admin}`, { token: t.owner.token });
    expect(byRole.body.data).toHaveLength(4);
    expect(byRole.body.data[0].roleName).toBe("admin");

    const expiresAt = inAnHour();
    const patched = await api(`${base(t.id)}/grants/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { effect: "ask", expiresAt },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ effect: "ask", expiresAt });
    const cleared = await api(`${base(t.id)}/grants/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { expiresAt: null },
    });
    expect(cleared.body.expiresAt).toBeNull();
    expect((await api(`${base(t.id)}/grants/${id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(`${base(t.id)}/grants/${id}`, { token: t.owner.token }), 404, "not_found");
  });

  it("targets exactly one role or principal of this tenant", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const g = { resource: "agent:*", action: "read", effect: "allow" };
    const neither = await api(`${base(t.id)}/grants`, { token: t.owner.token, body: g });
    expect(expectError(neither, 400, "bad_request").message).toMatch(/Exactly one of roleId or principalId/);
    const both = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, roleId: t.roles.member, principalId: t.ownerPrincipalId },
    });
    expectError(both, 400, "bad_request");
    const foreignRole = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, roleId: other.roles.member },
    });
    expect(expectError(foreignRole, 404, "not_found").message).toBe("Role not found");
    const foreignPrincipal = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, principalId: other.ownerPrincipalId },
    });
    expect(expectError(foreignPrincipal, 404, "not_found").message).toBe("Principal not found");
    const grants = await api(`${base(other.id)}/grants?limit=100`, { token: other.owner.token });
    expect(grants.body.data).toHaveLength(6);
  });

  it("refuses system origin, escalation, bad conditions, past expiry and malformed patterns", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    const member = await addMember(t);
    const g = { principalId: member.principalId, resource: "agent:*", action: "read", effect: "allow" };
    expectError(
      await api(`${base(t.id)}/grants`, { token: t.owner.token, body: { ...g, origin: "system" } }),
      403,
      "forbidden",
    );
    // Admins hold read/create/manage/write but not arbitrary verbs such as "delete".
    const escalate = await api(`${base(t.id)}/grants`, { token: admin.token, body: { ...g, action: "delete" } });
    expect(expectError(escalate, 403, "forbidden").message).toMatch(/cannot confer.*delete on agent:\*/);
    expectError(await api(`${base(t.id)}/grants`, { token: member.token, body: g }), 403, "forbidden");

    const unknown = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, conditions: { require_approval_above: 10 } },
    });
    expect(expectError(unknown, 400, "invalid_conditions").details.issues[0]).toMatch(/require_approval_above/);
    const badWindow = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, conditions: { time_window: { after: "25:00", before: "18:00", timezone: "UTC" } } },
    });
    expectError(badWindow, 400, "invalid_conditions");
    const badCidr = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, conditions: { ip_range: { cidrs: ["10.0.0.0/33"] } } },
    });
    expectError(badCidr, 400, "invalid_conditions");
    const past = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { ...g, expiresAt: "2020-01-01T00:00:00.000Z" },
    });
    expectError(past, 400, "invalid_expires_at");
    for (const bad of [
      { ...g, resource: "" },
      { ...g, resource: "agent: *" },
      { ...g, effect: "maybe" },
      { ...g, expiresAt: "tomorrow" },
      { ...g, conditions: [1, 2] },
    ]) {
      expectError(await api(`${base(t.id)}/grants`, { token: t.owner.token, body: bad }), 400, "validation_failed");
    }
    const list = await api(`${base(t.id)}/grants?principalId=${member.principalId}`, { token: t.owner.token });
    expect(list.body.data).toEqual([]);
  });

  it("never lets a system grant be changed or revoked", async () => {
    const t = await createTenant();
    const [ownerGrant] = (await api(`${base(t.id)}/grants?roleId=${t.roles.owner}`, { token: t.owner.token })).body
      .data;
    expectError(
      await api(`${base(t.id)}/grants/${ownerGrant.id}`, {
        method: "PATCH",
        token: t.owner.token,
        body: { effect: "deny" },
      }),
      403,
      "forbidden",
    );
    expectError(
      await api(`${base(t.id)}/grants/${ownerGrant.id}`, { method: "DELETE", token: t.owner.token }),
      403,
      "forbidden",
    );
  });

  it("hides other tenants' grants", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const [foreign] = (await api(`${base(other.id)}/grants`, { token: other.owner.token })).body.data;
    expectError(await api(`${base(t.id)}/grants/${foreign.id}`, { token: t.owner.token }), 404, "not_found");
    expectError(await api(`${base(other.id)}/grants/${foreign.id}`, { token: t.owner.token }), 404, "not_found");
    expectError(
      await api(`${base(t.id)}/grants/${foreign.id}`, { method: "DELETE", token: t.owner.token }),
      404,
      "not_found",
    );
  });
});

describe("grants in effect", () => {
  it("a more specific deny beats the role's allow; removing it restores access", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    expect((await api(`${base(t.id)}/principals`, { token: member.token })).status).toBe(200);
    const deny = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { principalId: member.principalId, resource: "principal:*", action: "read", effect: "deny" },
    });
    expectError(await api(`${base(t.id)}/principals`, { token: member.token }), 403, "forbidden");
    expect((await api(`${base(t.id)}/roles`, { token: member.token })).status).toBe(200);
    await api(`${base(t.id)}/grants/${deny.body.id}`, { method: "DELETE", token: t.owner.token });
    expect((await api(`${base(t.id)}/principals`, { token: member.token })).status).toBe(200);
  });

  it("an expired grant no longer counts", async () => {
    const t = await createTenant();
    const bare = await addMember(t, null);
    await getDb(env)
      .insert(grant)
      .values({
        id: newId("grant"),
        tenantId: t.id,
        principalId: bare.principalId,
        resource: "role:*",
        action: "read",
        effect: "allow",
        origin: "role",
        expiresAt: new Date(Date.now() - 1),
      });
    expectError(await api(`${base(t.id)}/roles`, { token: bare.token }), 403, "forbidden");
  });

  it("a stored grant with an unknown condition denies instead of failing", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    await getDb(env)
      .insert(grant)
      .values({
        id: newId("grant"),
        tenantId: t.id,
        principalId: member.principalId,
        resource: "role:*",
        action: "read",
        effect: "allow",
        origin: "role",
        conditions: { from_the_future: true },
      });
    expectError(await api(`${base(t.id)}/roles`, { token: member.token }), 403, "forbidden");
  });

  it("ip_range and time_window conditions gate access", async () => {
    const t = await createTenant();
    const bare = await addMember(t, null);
    await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: {
        principalId: bare.principalId,
        resource: "role:*",
        action: "read",
        effect: "allow",
        conditions: { ip_range: { cidrs: ["10.1.0.0/16", "2001:db8::/32"] } },
      },
    });
    const from = (ip: string) => api(`${base(t.id)}/roles`, { token: bare.token, headers: { "cf-connecting-ip": ip } });
    expect((await from("10.1.2.3")).status).toBe(200);
    expect((await from("2001:db8::1")).status).toBe(200);
    expectError(await from("10.2.0.1"), 403, "forbidden");
    expectError(await api(`${base(t.id)}/roles`, { token: bare.token }), 403, "forbidden");

    // Windows in whole minutes (UTC): [now-2, now+2) is open now; [now+2, now-2) wraps midnight and is closed
    // now. Two minutes, not one: truncated to the minute, a one-minute margin can close while the test runs.
    const now = Date.now();
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    const window = (after: number, before: number) => ({
      time_window: { after: hhmm(after), before: hhmm(before), timezone: "UTC" },
    });
    const grantWith = (resource: string, conditions: unknown) =>
      api(`${base(t.id)}/grants`, {
        token: t.owner.token,
        body: { principalId: bare.principalId, resource, action: "read", effect: "allow", conditions },
      });
    expect((await grantWith("grant:*", window(now - 120_000, now + 120_000))).status).toBe(201);
    expect((await grantWith("principal:*", window(now + 120_000, now - 120_000))).status).toBe(201);
    expect((await api(`${base(t.id)}/grants`, { token: bare.token })).status).toBe(200);
    expectError(await api(`${base(t.id)}/principals`, { token: bare.token }), 403, "forbidden");
  });
});

describe("POST /principals/:id/evaluate", () => {
  it("explains the decision: every matching grant, its specificity, and the winner", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const deny = await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: { principalId: member.principalId, resource: "agent:agt_secret", action: "read", effect: "deny" },
    });
    const res = await api(`${base(t.id)}/principals/${member.principalId}/evaluate`, {
      token: t.owner.token,
      body: { resource: "agent:agt_secret", action: "read" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ effect: "deny", allowed: false, decidedBy: deny.body.id });
    expect(res.body.reason).toContain(deny.body.id);
    const matching = res.body.matchingGrants;
    expect(matching).toHaveLength(2);
    expect(matching[0]).toMatchObject({ id: deny.body.id, specificity: 2020, winner: true, conditionOutcome: "none" });
    expect(matching[1]).toMatchObject({
      resource: "*",
      action: "read",
      origin: "system",
      specificity: 1004,
      winner: false,
    });

    const other = await api(`${base(t.id)}/principals/${member.principalId}/evaluate`, {
      token: t.owner.token,
      body: { resource: "agent:agt_public", action: "read" },
    });
    expect(other.body).toMatchObject({ effect: "allow", allowed: true });
    const none = await api(`${base(t.id)}/principals/${member.principalId}/evaluate`, {
      token: t.owner.token,
      body: { resource: "agent:agt_public", action: "manage" },
    });
    expect(none.body).toMatchObject({ effect: "deny", allowed: false, decidedBy: null, matchingGrants: [] });
    expect(none.body.reason).toMatch(/No grant matches/);
  });

  it("simulates the request's address and time", async () => {
    const t = await createTenant();
    const bare = await addMember(t, null);
    await api(`${base(t.id)}/grants`, {
      token: t.owner.token,
      body: {
        principalId: bare.principalId,
        resource: "wallet:*",
        action: "read",
        effect: "allow",
        conditions: { ip_range: { cidrs: ["192.168.0.0/24"] } },
      },
    });
    const inside = await api(`${base(t.id)}/principals/${bare.principalId}/evaluate`, {
      token: t.owner.token,
      body: { resource: "wallet:wlt_1", action: "read", ip: "192.168.0.7" },
    });
    expect(inside.body).toMatchObject({ allowed: true, matchingGrants: [{ conditionOutcome: "met", counted: true }] });
    const outside = await api(`${base(t.id)}/principals/${bare.principalId}/evaluate`, {
      token: t.owner.token,
      body: { resource: "wallet:wlt_1", action: "read", ip: "192.168.1.7" },
    });
    expect(outside.body).toMatchObject({
      allowed: false,
      matchingGrants: [{ conditionOutcome: "unmet", counted: false }],
    });
  });

  it("needs grant read, a principal of this tenant, and a valid body", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const bare = await addMember(t, null);
    const body = { resource: "agent:x", action: "read" };
    expectError(
      await api(`${base(t.id)}/principals/${t.ownerPrincipalId}/evaluate`, { token: bare.token, body }),
      403,
      "forbidden",
    );
    expectError(
      await api(`${base(t.id)}/principals/${other.ownerPrincipalId}/evaluate`, { token: t.owner.token, body }),
      404,
      "not_found",
    );
    expectError(
      await api(`${base(other.id)}/principals/${other.ownerPrincipalId}/evaluate`, { token: t.owner.token, body }),
      404,
      "not_found",
    );
    for (const bad of [{}, { resource: "x" }, { ...body, at: "yesterday" }, { ...body, spentToday: "1e3" }]) {
      expectError(
        await api(`${base(t.id)}/principals/${t.ownerPrincipalId}/evaluate`, { token: t.owner.token, body: bad }),
        400,
        "validation_failed",
      );
    }
  });
});
