/** Agent definitions: CRUD, atomic creation, versions with snapshots and rollback, stop, grants, isolation. */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createAgent } from "../../src/catalog/agents";
import { getDb } from "../../src/db/client";
import { agent, agentInstance, agentRole, agentSession, agentVersion, grant, principal } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { addMember, api, createTenant, expectError, type TestTenant } from "./support/api";

const defs = (tenantId: string) => `/api/tenants/${tenantId}/agents/definitions`;

async function createDef(t: TestTenant, body: Record<string, unknown> = {}, token = t.owner.token) {
  const res = await api(defs(t.id), { token, body: { name: "Demo", ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function createRole(t: TestTenant, name: string) {
  const res = await api(`/api/tenants/${t.id}/roles`, { token: t.owner.token, body: { name } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const agentsOf = (tenantId: string) => getDb(env).select().from(agent).where(eq(agent.tenantId, tenantId));

describe("agent definitions", () => {
  it("creates a definition with version 1, its roles and the creator's state grant", async () => {
    const t = await createTenant();
    const ops = await createRole(t, "ops");
    const created = await api(defs(t.id), {
      token: t.owner.token,
      body: {
        name: "Triage",
        systemPrompt: "Sort the mail.",
        modelConfig: { model: "m-1", temperature: 0.2 },
        credentialRequirements: [{ providerName: "openai", source: "tenant", scopes: ["chat"] }],
        grantRequirements: [{ resource: "wallet:*", action: "read", source: "creator" }],
        roleIds: [ops, ops],
      },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect(id).toMatch(/^agt_[0-9a-f]{32}$/);
    expect(created.body).toMatchObject({
      tenantId: t.id,
      creatorPrincipalId: t.ownerPrincipalId,
      name: "Triage",
      description: null,
      systemPrompt: "Sort the mail.",
      modelConfig: { model: "m-1", temperature: 0.2 },
      currentVersion: "1",
      status: "deployed",
      roles: [{ id: ops, name: "ops" }],
    });
    expect(created.body).not.toHaveProperty("contextConfig");
    expect(created.body).not.toHaveProperty("capabilities");

    const got = await api(`${defs(t.id)}/${id}`, { token: t.owner.token });
    expect(got.body).toEqual(created.body);

    const grants = await api(`/api/tenants/${t.id}/grants?principalId=${t.ownerPrincipalId}`, { token: t.owner.token });
    expect(grants.body.data).toHaveLength(1);
    expect(grants.body.data[0]).toMatchObject({
      resource: `agent-state:${id}`,
      action: "read",
      effect: "allow",
      origin: "creator",
      roleId: null,
    });

    const versions = await api(`${defs(t.id)}/${id}/versions`, { token: t.owner.token });
    expect(versions.body.data.map((v: { version: string; status: string }) => [v.version, v.status])).toEqual([
      ["1", "active"],
    ]);
    const v1 = await api(`${defs(t.id)}/${id}/versions/1`, { token: t.owner.token });
    expect(v1.body.snapshot).toEqual({
      name: "Triage",
      description: null,
      systemPrompt: "Sort the mail.",
      contextConfig: null,
      initialState: null,
      modelConfig: { model: "m-1", temperature: 0.2 },
      capabilities: null,
      credentialRequirements: [{ providerName: "openai", source: "tenant", scopes: ["chat"] }],
      grantRequirements: [{ resource: "wallet:*", action: "read", source: "creator" }],
      roleIds: [ops],
    });
    expectError(await api(`${defs(t.id)}/${id}/versions/2`, { token: t.owner.token }), 404, "not_found");
  });

  it("is all-or-nothing: a failure in the middle of the batch leaves no agent, version, role link or grant", async () => {
    const t = await createTenant();
    const ops = await createRole(t, "ops");
    const first = await createDef(t);
    const db = getDb(env);
    const [taken] = await db
      .select()
      .from(grant)
      .where(eq(grant.resource, `agent-state:${first.id}`));
    const agentId = newId("agent");
    // The creator grant (the last statement) reuses an existing grant id: the batch fails at its end.
    const ids = (kind: Parameters<typeof newId>[0]) =>
      kind === "agent" ? agentId : kind === "grant" ? (taken?.id as string) : newId(kind);
    await expect(
      createAgent(db, t.id, t.ownerPrincipalId, { name: "Half", roleIds: [ops] }, { newId: ids }),
    ).rejects.toThrow();
    expect(await db.select().from(agent).where(eq(agent.id, agentId))).toEqual([]);
    expect(await db.select().from(agentVersion).where(eq(agentVersion.agentId, agentId))).toEqual([]);
    expect(await db.select().from(agentRole).where(eq(agentRole.agentId, agentId))).toEqual([]);
    expect(
      await db
        .select()
        .from(grant)
        .where(eq(grant.resource, `agent-state:${agentId}`)),
    ).toEqual([]);
    expect((await agentsOf(t.id)).map((a) => a.id)).toEqual([first.id]);
  });

  it("records a version with a snapshot on every edit, and rollback brings the content back", async () => {
    const t = await createTenant();
    const ops = await createRole(t, "ops");
    const a = await createDef(t, {
      name: "Writer",
      description: "First",
      systemPrompt: "Prompt A",
      modelConfig: { model: "a" },
      roleIds: [ops],
    });
    const path = `${defs(t.id)}/${a.id}`;
    const v2 = await api(path, {
      method: "PATCH",
      token: t.owner.token,
      body: { systemPrompt: "Prompt B", modelConfig: null, roleIds: [], capabilities: { tools: ["web"] } },
    });
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({
      name: "Writer",
      description: "First",
      systemPrompt: "Prompt B",
      capabilities: { tools: ["web"] },
      currentVersion: "2",
      roles: [],
    });
    expect(v2.body).not.toHaveProperty("modelConfig");
    // A PATCH that changes nothing still records a version.
    const v3 = await api(path, { method: "PATCH", token: t.owner.token, body: {} });
    expect(v3.body.currentVersion).toBe("3");

    const versions = await api(`${path}/versions`, { token: t.owner.token });
    const states = versions.body.data.map((v: { version: string; status: string }) => `${v.version}:${v.status}`);
    expect(states.sort()).toEqual(["1:inactive", "2:inactive", "3:active"]);
    const snap2 = await api(`${path}/versions/2`, { token: t.owner.token });
    expect(snap2.body).toMatchObject({
      version: "2",
      status: "inactive",
      snapshot: { systemPrompt: "Prompt B", modelConfig: null, roleIds: [], capabilities: { tools: ["web"] } },
    });

    const back = await api(`${path}/rollback`, { token: t.owner.token, body: { version: "1" } });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({
      name: "Writer",
      description: "First",
      systemPrompt: "Prompt A",
      modelConfig: { model: "a" },
      currentVersion: "1",
      roles: [{ id: ops, name: "ops" }],
    });
    expect(back.body).not.toHaveProperty("capabilities");
    const reread = await api(path, { token: t.owner.token });
    expect(reread.body).toMatchObject({ systemPrompt: "Prompt A", modelConfig: { model: "a" }, currentVersion: "1" });
    const after = await api(`${path}/versions`, { token: t.owner.token });
    const active = after.body.data.filter((v: { status: string }) => v.status === "active");
    expect(active.map((v: { version: string }) => v.version)).toEqual(["1"]);

    // The next edit takes the number after the highest, not after the current one.
    const v4 = await api(path, { method: "PATCH", token: t.owner.token, body: { name: "Writer 4" } });
    expect(v4.body).toMatchObject({ currentVersion: "4", name: "Writer 4", systemPrompt: "Prompt A" });
    const snap4 = await api(`${path}/versions/4`, { token: t.owner.token });
    expect(snap4.body.snapshot).toMatchObject({ name: "Writer 4", systemPrompt: "Prompt A", roleIds: [ops] });

    // Roles deleted since the snapshot are left out when it is restored.
    await api(path, { method: "PATCH", token: t.owner.token, body: { roleIds: [] } });
    expect((await api(`/api/tenants/${t.id}/roles/${ops}`, { method: "DELETE", token: t.owner.token })).status).toBe(
      204,
    );
    const restored = await api(`${path}/rollback`, { token: t.owner.token, body: { version: "4" } });
    expect(restored.body).toMatchObject({ name: "Writer 4", roles: [], currentVersion: "4" });

    const missing = await api(`${path}/rollback`, { token: t.owner.token, body: { version: "99" } });
    expect(expectError(missing, 400, "bad_request").message).toBe("Target version not found");
    expectError(await api(`${path}/rollback`, { token: t.owner.token, body: {} }), 400, "validation_failed");
    expectError(
      await api(`${path}/rollback`, { token: t.owner.token, body: { version: 1 } }),
      400,
      "validation_failed",
    );
  });

  it("stops the definition and its running instances, ends their sessions and deactivates their principals", async () => {
    const t = await createTenant();
    const a = await createDef(t);
    const db = getDb(env);
    const makeInstance = async (status: "running" | "stopped") => {
      const instanceId = newId("instance");
      const principalId = newId("principal");
      const sessionId = newId("session");
      await db.batch([
        db.insert(principal).values({ id: principalId, tenantId: t.id, kind: "agent", refId: instanceId }),
        db
          .insert(agentSession)
          .values({ id: sessionId, tenantId: t.id, agentId: a.id, principalId: t.ownerPrincipalId }),
        db.insert(agentInstance).values({
          id: instanceId,
          agentId: a.id,
          tenantId: t.id,
          principalId,
          address: `${instanceId}@${t.slug}.localhost`,
          sessionId: status === "running" ? sessionId : null,
          status,
        }),
      ]);
      return { instanceId, principalId, sessionId };
    };
    const running = await makeInstance("running");
    const stopped = await makeInstance("stopped");

    expect((await api(`${defs(t.id)}/${a.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    const got = await api(`${defs(t.id)}/${a.id}`, { token: t.owner.token });
    expect(got.body.status).toBe("stopped");
    const [inst] = await db.select().from(agentInstance).where(eq(agentInstance.id, running.instanceId));
    expect(inst).toMatchObject({ status: "stopped", sessionId: null, stopReason: "agent_deleted" });
    expect(inst?.endedAt).toBeInstanceOf(Date);
    const [p] = await db.select().from(principal).where(eq(principal.id, running.principalId));
    expect(p?.status).toBe("deactivated");
    const [s] = await db.select().from(agentSession).where(eq(agentSession.id, running.sessionId));
    expect(s?.status).toBe("ended");
    // An instance that had already stopped is left as it was.
    const [oldInst] = await db.select().from(agentInstance).where(eq(agentInstance.id, stopped.instanceId));
    expect(oldInst).toMatchObject({ status: "stopped", stopReason: null, endedAt: null });
    const [oldP] = await db.select().from(principal).where(eq(principal.id, stopped.principalId));
    expect(oldP?.status).toBe("active");

    expect((await api(`${defs(t.id)}/${a.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    const stoppedList = await api(`${defs(t.id)}?status=stopped`, { token: t.owner.token });
    expect(stoppedList.body.data.map((d: { id: string }) => d.id)).toEqual([a.id]);
    const deployedList = await api(`${defs(t.id)}?status=deployed`, { token: t.owner.token });
    expect(deployedList.body.data).toEqual([]);
  });

  it("answers 404 for unknown definitions and versions", async () => {
    const t = await createTenant();
    const a = await createDef(t);
    const unknown = `${defs(t.id)}/${newId("agent")}`;
    const tok = { token: t.owner.token };
    for (const res of [
      await api(unknown, tok),
      await api(unknown, { ...tok, method: "PATCH", body: { name: "x" } }),
      await api(unknown, { ...tok, method: "DELETE" }),
      await api(`${unknown}/versions`, tok),
      await api(`${unknown}/versions/1`, tok),
      await api(`${unknown}/rollback`, { ...tok, body: { version: "1" } }),
      await api(`${defs(t.id)}/not-an-id`, tok),
    ]) {
      expect(expectError(res, 404, "not_found").message).toBe("Agent not found");
    }
    const v = expectError(await api(`${defs(t.id)}/${a.id}/versions/7`, tok), 404, "not_found");
    expect(v.message).toBe("Version not found");
  });

  it("lets a member read but not create, edit, roll back or stop (nothing is written)", async () => {
    const t = await createTenant();
    const a = await createDef(t, { systemPrompt: "keep" });
    await api(`${defs(t.id)}/${a.id}`, { method: "PATCH", token: t.owner.token, body: { systemPrompt: "keep" } });
    const member = await addMember(t);
    expect((await api(defs(t.id), { token: member.token })).status).toBe(200);
    expect((await api(`${defs(t.id)}/${a.id}`, { token: member.token })).status).toBe(200);
    expect((await api(`${defs(t.id)}/${a.id}/versions`, { token: member.token })).status).toBe(200);
    expect((await api(`${defs(t.id)}/${a.id}/versions/1`, { token: member.token })).status).toBe(200);

    expectError(await api(defs(t.id), { token: member.token, body: { name: "Mine" } }), 403, "forbidden");
    // The grant is checked before the body: an invalid body is still a 403.
    expectError(await api(defs(t.id), { token: member.token, body: { name: "" } }), 403, "forbidden");
    const path = `${defs(t.id)}/${a.id}`;
    expectError(
      await api(path, { method: "PATCH", token: member.token, body: { systemPrompt: "changed" } }),
      403,
      "forbidden",
    );
    expectError(await api(`${path}/rollback`, { token: member.token, body: { version: "1" } }), 403, "forbidden");
    expectError(await api(path, { method: "DELETE", token: member.token }), 403, "forbidden");

    const rows = await agentsOf(t.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ systemPrompt: "keep", currentVersion: "2", status: "deployed" });
    const memberGrants = await getDb(env).select().from(grant).where(eq(grant.principalId, member.principalId));
    expect(memberGrants).toEqual([]);
  });

  it("does not let a caller hand an agent permissions they do not hold", async () => {
    const t = await createTenant();
    const admin = await addMember(t, "admin");
    const spender = await createRole(t, "spender");
    await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { roleId: spender, resource: "wallet:*", action: "spend", effect: "allow" },
    });
    const escalations = [
      { name: "x", roleIds: [t.roles.owner] },
      { name: "x", roleIds: [spender] },
      { name: "x", grantRequirements: [{ resource: "wallet:*", action: "spend", source: "invoker" }] },
    ];
    for (const body of escalations) {
      const res = await api(defs(t.id), { token: admin.token, body });
      expect(expectError(res, 403, "forbidden").message).toMatch(/cannot confer/);
    }
    expect(await agentsOf(t.id)).toEqual([]);

    // What the admin holds can be conferred; the owner can confer anything.
    const a = await createDef(
      t,
      { roleIds: [t.roles.member], grantRequirements: [{ resource: "wallet:*", action: "read", source: "creator" }] },
      admin.token,
    );
    const path = `${defs(t.id)}/${a.id}`;
    expectError(
      await api(path, { method: "PATCH", token: admin.token, body: { roleIds: [t.roles.member, spender] } }),
      403,
      "forbidden",
    );
    // Keeping what is already there is not an escalation.
    const kept = await api(path, { method: "PATCH", token: admin.token, body: { systemPrompt: "hi" } });
    expect(kept.status).toBe(200);
    const owned = await api(path, { method: "PATCH", token: t.owner.token, body: { roleIds: [spender] } });
    expect(owned.body.roles).toEqual([{ id: spender, name: "spender" }]);
    await api(path, { method: "PATCH", token: t.owner.token, body: { roleIds: [] } });
    // Rolling back to the version that had `spender` would link it again: the admin may not.
    const rb = await api(`${path}/rollback`, { token: admin.token, body: { version: "3" } });
    expect(expectError(rb, 403, "forbidden").message).toMatch(/cannot confer/);
    expect((await api(path, { token: t.owner.token })).body).toMatchObject({ roles: [], currentVersion: "4" });
  });

  it("hides definitions from other tenants behind 404s", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const a = await createDef(t, { systemPrompt: "secret" });
    const tok = { token: other.owner.token };
    for (const tenantId of [t.id, other.id]) {
      const path = `${defs(tenantId)}/${a.id}`;
      for (const res of [
        await api(path, tok),
        await api(path, { ...tok, method: "PATCH", body: { systemPrompt: "stolen" } }),
        await api(path, { ...tok, method: "DELETE" }),
        await api(`${path}/versions`, tok),
        await api(`${path}/versions/1`, tok),
        await api(`${path}/rollback`, { ...tok, body: { version: "1" } }),
      ]) {
        expectError(res, 404, "not_found");
        expect(JSON.stringify(res.body)).not.toContain("secret");
      }
    }
    expectError(await api(defs(t.id), tok), 404, "not_found");
    expect((await api(defs(other.id), tok)).body.data).toEqual([]);
    const [row] = await agentsOf(t.id);
    expect(row).toMatchObject({ systemPrompt: "secret", status: "deployed", currentVersion: "1" });
  });

  it("rejects bad input with a 400 envelope and writes nothing", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const tok = { token: t.owner.token };
    const invalid = [
      {},
      { name: "" },
      { name: "   " },
      { name: 3 },
      { name: "x".repeat(201) },
      { name: "x", systemPrompt: 5 },
      { name: "x", modelConfig: "fast" },
      { name: "x", roleIds: "rol_x" },
      { name: "x", roleIds: [""] },
      { name: "x", credentialRequirements: [{ providerName: "p", source: "everyone" }] },
      { name: "x", credentialRequirements: { providerName: "p", source: "tenant" } },
      { name: "x", grantRequirements: [{ resource: "wallet:*" }] },
      { name: "x", grantRequirements: [{ resource: "wallet:*", action: "read", source: "creator", effect: "maybe" }] },
      { name: "x", grantRequirements: [{ resource: "wallet *", action: "read", source: "creator" }] },
      { name: "x", grantRequirements: [{ resource: "w", action: "read", source: "creator", extra: true }] },
      { name: "x", grantRequirements: [{ resource: "w", action: "read", source: "creator", conditions: [] }] },
    ];
    for (const body of invalid) {
      const res = await api(defs(t.id), { ...tok, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expectError(res, 400, "validation_failed");
    }
    expectError(await api(defs(t.id), { ...tok, body: "{not json" }), 400, "invalid_json");

    const unknownRole = newId("role");
    const res = await api(defs(t.id), { ...tok, body: { name: "x", roleIds: [unknownRole, t.roles.member] } });
    expect(expectError(res, 400, "bad_request").message).toBe(`Roles not found in tenant: ${unknownRole}`);
    const foreign = await api(defs(t.id), { ...tok, body: { name: "x", roleIds: [other.roles.member] } });
    expectError(foreign, 400, "bad_request");
    const badConditions = await api(defs(t.id), {
      ...tok,
      body: {
        name: "x",
        grantRequirements: [
          { resource: "w", action: "read", source: "creator", conditions: { phase_of_moon: "full" } },
        ],
      },
    });
    expectError(badConditions, 400, "invalid_conditions");
    expect(await agentsOf(t.id)).toEqual([]);

    const a = await createDef(t);
    const path = `${defs(t.id)}/${a.id}`;
    for (const body of [{ name: "" }, { name: null }, { roleIds: [null] }, { grantRequirements: [{}] }]) {
      expectError(await api(path, { ...tok, method: "PATCH", body }), 400, "validation_failed");
    }
    expectError(await api(path, { ...tok, method: "PATCH", body: { roleIds: [unknownRole] } }), 400, "bad_request");
    expectError(await api(`${defs(t.id)}?status=running`, tok), 400, "validation_failed");
    expectError(await api(`${defs(t.id)}?cursor=!!`, tok), 400, "invalid_cursor");
    expect((await api(path, tok)).body.currentVersion).toBe("1");
  });

  it("pages through definitions and versions newest first", async () => {
    const t = await createTenant();
    const ids: string[] = [];
    for (const name of ["a", "b", "c"]) ids.push((await createDef(t, { name })).id);
    const tok = { token: t.owner.token };
    const first = await api(`${defs(t.id)}?limit=2`, tok);
    expect(first.body.data).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await api(`${defs(t.id)}?limit=2&cursor=${first.body.nextCursor}`, tok);
    expect(second.body.data).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    const seen = [...first.body.data, ...second.body.data].map((d: { id: string }) => d.id);
    expect(seen).toEqual([...ids].reverse());

    const path = `${defs(t.id)}/${ids[0]}`;
    await api(path, { ...tok, method: "PATCH", body: { name: "a2" } });
    const v1 = await api(`${path}/versions?limit=1`, tok);
    expect(v1.body.data.map((v: { version: string }) => v.version)).toEqual(["2"]);
    const v2 = await api(`${path}/versions?limit=1&cursor=${v1.body.nextCursor}`, tok);
    expect(v2.body.data.map((v: { version: string }) => v.version)).toEqual(["1"]);
    expect(v2.body.nextCursor).toBeNull();
  });

  it("is described in the OpenAPI document under the Agents tag", async () => {
    const doc = await api("/openapi.json");
    expect(doc.body.tags.map((tag: { name: string }) => tag.name)).toContain("Agents");
    const paths = Object.keys(doc.body.paths).filter((p) => p.includes("/agents/definitions"));
    expect(paths).toEqual(
      expect.arrayContaining([
        "/api/tenants/{tenantId}/agents/definitions",
        "/api/tenants/{tenantId}/agents/definitions/{agentId}",
        "/api/tenants/{tenantId}/agents/definitions/{agentId}/rollback",
        "/api/tenants/{tenantId}/agents/definitions/{agentId}/versions",
        "/api/tenants/{tenantId}/agents/definitions/{agentId}/versions/{version}",
      ]),
    );
    const create = doc.body.paths["/api/tenants/{tenantId}/agents/definitions"].post;
    expect(create.tags).toEqual(["Agents"]);
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(["201", "400", "403", "404"]));
  });
});
