/** `/api/me/*`: the signed-in user's memberships, and what they can see across tenants. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { agent, agentInstance, agentSession, approval, principal } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { addMember, api, createTenant, expectError, signUp } from "./support/api";

/** Rows of resources whose routes come later (agents, instances, sessions, approvals). */
async function seedAgentWork(tenantId: string, creatorPrincipalId: string) {
  const db = getDb(env);
  const agentId = newId("agent");
  const sessionId = newId("session");
  const instancePrincipal = newId("principal");
  const running = newId("instance");
  const stopped = newId("instance");
  await db.insert(agent).values({ id: agentId, tenantId, creatorPrincipalId, name: "Researcher" });
  await db.insert(agentSession).values({ id: sessionId, tenantId, agentId, principalId: creatorPrincipalId });
  await db.insert(principal).values({ id: instancePrincipal, tenantId, kind: "agent", refId: running });
  await db.insert(agentInstance).values([
    { id: running, agentId, tenantId, principalId: instancePrincipal, address: `${running}@hub`, status: "running" },
    { id: stopped, agentId, tenantId, principalId: instancePrincipal, address: `${stopped}@hub`, status: "stopped" },
  ]);
  const approvalId = newId("approval");
  await db.insert(approval).values({
    id: approvalId,
    tenantId,
    principalId: instancePrincipal,
    agentId,
    instanceId: running,
    resource: "wallet:*",
    action: "write",
  });
  return { agentId, sessionId, running, stopped, approvalId, instancePrincipal };
}

describe("/api/me", () => {
  it("lists every membership with tenant and roles, any status", async () => {
    const user = await signUp();
    const a = await createTenant(user);
    const b = await createTenant();
    const invite = await api(`/api/tenants/${b.id}/members/invite`, {
      token: b.owner.token,
      body: { email: user.email, roleId: b.roles.member },
    });
    const res = await api("/api/me/principals", { token: user.token });
    expect(res.status).toBe(200);
    const byTenant = Object.fromEntries(res.body.data.map((p: { tenantId: string }) => [p.tenantId, p]));
    expect(byTenant[a.id]).toMatchObject({ status: "active", tenantSlug: a.slug, roles: [{ name: "owner" }] });
    expect(byTenant[b.id]).toMatchObject({
      principalId: invite.body.id,
      status: "invited",
      roles: [{ name: "member" }],
    });
    expect(res.body.nextCursor).toBeNull();
    const paged = await api("/api/me/principals?limit=1", { token: user.token });
    expect(paged.body.data).toHaveLength(1);
    expect(paged.body.nextCursor).toEqual(expect.any(String));
  });

  it("shows agents, live instances, sessions and decidable approvals of active memberships only", async () => {
    const t = await createTenant();
    const work = await seedAgentWork(t.id, t.ownerPrincipalId);
    const agents = await api("/api/me/agents", { token: t.owner.token });
    expect(agents.body.data).toEqual([
      {
        id: work.agentId,
        tenantId: t.id,
        tenantName: `Tenant ${t.slug}`,
        name: "Researcher",
        description: null,
        status: "deployed",
      },
    ]);
    const instances = await api("/api/me/instances", { token: t.owner.token });
    expect(instances.body.data.map((i: { id: string }) => i.id)).toEqual([work.running]);
    expect(instances.body.data[0]).toMatchObject({
      agentName: "Researcher",
      status: "running",
      address: `${work.running}@hub`,
    });
    const sessions = await api("/api/me/sessions", { token: t.owner.token });
    expect(sessions.body.data).toEqual([
      expect.objectContaining({ id: work.sessionId, agentName: "Researcher", endedAt: null }),
    ]);
    const approvals = await api("/api/me/approvals", { token: t.owner.token });
    expect(approvals.body.data).toEqual([
      expect.objectContaining({ id: work.approvalId, status: "pending", resource: "wallet:*", action: "write" }),
    ]);

    // A plain member sees agents and instances but cannot decide approvals.
    const member = await addMember(t);
    expect((await api("/api/me/agents", { token: member.token })).body.data).toHaveLength(1);
    expect((await api("/api/me/approvals", { token: member.token })).body.data).toEqual([]);
    expect((await api("/api/me/sessions", { token: member.token })).body.data).toEqual([]);

    // Once suspended, nothing of that tenant shows any more.
    await api(`/api/tenants/${t.id}/principals/${member.principalId}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { status: "suspended" },
    });
    expect((await api("/api/me/agents", { token: member.token })).body.data).toEqual([]);
    expect((await api("/api/me/instances", { token: member.token })).body.data).toEqual([]);

    // Strangers see nothing of it.
    const stranger = await signUp();
    for (const path of ["agents", "instances", "sessions", "approvals"]) {
      const res = await api(`/api/me/${path}`, { token: stranger.token });
      expect(res.body).toEqual({ data: [], nextCursor: null });
    }
  });

  it("requires a session and validates paging", async () => {
    for (const path of ["", "/principals", "/invitations", "/agents", "/instances", "/sessions", "/approvals"]) {
      expectError(await api(`/api/me${path}`), 401, "unauthorized");
    }
    const user = await signUp();
    expectError(await api("/api/me/agents?limit=500", { token: user.token }), 400, "validation_failed");
    expectError(await api("/api/me/agents?cursor=bogus!", { token: user.token }), 400, "invalid_cursor");
  });
});
