/** Roles: CRUD, system roles, assignment and removal (tenant-scoped, no escalation, last owner kept). */
import { describe, expect, it } from "vitest";
import { addMember, api, createTenant, expectError } from "./support/api";

const base = (tenantId: string) => `/api/tenants/${tenantId}`;

describe("roles", () => {
  it("creates, reads, renames and deletes a custom role", async () => {
    const t = await createTenant();
    const created = await api(`${base(t.id)}/roles`, {
      token: t.owner.token,
      body: { name: "operators", description: "Run things" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "operators",
      description: "Run things",
      isSystem: false,
      tenantId: t.id,
    });
    const id = created.body.id;
    expect((await api(`${base(t.id)}/roles/${id}`, { token: t.owner.token })).body.name).toBe("operators");
    const renamed = await api(`${base(t.id)}/roles/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "ops", description: null },
    });
    expect(renamed.body).toMatchObject({ name: "ops", description: null });
    const list = await api(`${base(t.id)}/roles`, { token: t.owner.token });
    expect(list.body.data.map((r: { name: string }) => r.name).sort()).toEqual(["admin", "member", "ops", "owner"]);
    expect((await api(`${base(t.id)}/roles/${id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(`${base(t.id)}/roles/${id}`, { token: t.owner.token }), 404, "not_found");
  });

  it("protects system roles, refuses duplicates and roles still in use", async () => {
    const t = await createTenant();
    expectError(
      await api(`${base(t.id)}/roles/${t.roles.owner}`, { method: "PATCH", token: t.owner.token, body: { name: "x" } }),
      403,
      "forbidden",
    );
    expectError(
      await api(`${base(t.id)}/roles/${t.roles.member}`, { method: "DELETE", token: t.owner.token }),
      403,
      "forbidden",
    );
    expectError(await api(`${base(t.id)}/roles`, { token: t.owner.token, body: { name: "admin" } }), 409, "conflict");
    const role = await api(`${base(t.id)}/roles`, { token: t.owner.token, body: { name: "used" } });
    const member = await addMember(t);
    await api(`${base(t.id)}/principals/${member.principalId}/roles/${role.body.id}`, {
      method: "POST",
      token: t.owner.token,
    });
    const inUse = await api(`${base(t.id)}/roles/${role.body.id}`, { method: "DELETE", token: t.owner.token });
    expect(expectError(inUse, 400, "bad_request").message).toBe("Role is still assigned to 1 principal(s)");
    for (const body of [{}, { name: "" }, { name: "x".repeat(101) }, { name: 3 }]) {
      expectError(await api(`${base(t.id)}/roles`, { token: t.owner.token, body }), 400, "validation_failed");
    }
  });

  it("needs role grants: a plain member can read but not create, change or assign", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    expect((await api(`${base(t.id)}/roles`, { token: member.token })).status).toBe(200);
    expectError(await api(`${base(t.id)}/roles`, { token: member.token, body: { name: "mine" } }), 403, "forbidden");
    expectError(
      await api(`${base(t.id)}/principals/${member.principalId}/roles/${t.roles.admin}`, {
        method: "POST",
        token: member.token,
      }),
      403,
      "forbidden",
    );
    const roles = await api(`${base(t.id)}/roles`, { token: t.owner.token });
    expect(roles.body.data).toHaveLength(3);
  });

  it("assigns idempotently and removes; an admin cannot hand out owner", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const admin = await addMember(t, "admin");
    const path = `${base(t.id)}/principals/${member.principalId}/roles/${t.roles.admin}`;
    expect((await api(path, { method: "POST", token: admin.token })).status).toBe(204);
    expect((await api(path, { method: "POST", token: admin.token })).status).toBe(204);
    const got = await api(`${base(t.id)}/principals/${member.principalId}`, { token: t.owner.token });
    expect(got.body.roles.map((r: { name: string }) => r.name).sort()).toEqual(["admin", "member"]);
    const escalate = await api(`${base(t.id)}/principals/${member.principalId}/roles/${t.roles.owner}`, {
      method: "POST",
      token: admin.token,
    });
    expect(expectError(escalate, 403, "forbidden").message).toMatch(/cannot confer/);
    expect((await api(path, { method: "DELETE", token: admin.token })).status).toBe(204);
    expect(expectError(await api(path, { method: "DELETE", token: admin.token }), 404, "not_found").message).toBe(
      "Assignment not found",
    );
  });

  it("keeps the last owner and scopes everything to the tenant", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const lastOwner = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}/roles/${t.roles.owner}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expectError(lastOwner, 409, "conflict");
    // Another tenant's owner cannot remove this tenant's assignment through their own tenant.
    const crossTenant = await api(`${base(other.id)}/principals/${t.ownerPrincipalId}/roles/${t.roles.owner}`, {
      method: "DELETE",
      token: other.owner.token,
    });
    expectError(crossTenant, 404, "not_found");
    const foreignRole = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}/roles/${other.roles.owner}`, {
      method: "POST",
      token: t.owner.token,
    });
    expect(expectError(foreignRole, 404, "not_found").message).toBe("Role not found");
    expectError(await api(`${base(t.id)}/roles/${other.roles.admin}`, { token: t.owner.token }), 404, "not_found");
    expectError(await api(`${base(other.id)}/roles`, { token: t.owner.token }), 404, "not_found");
    const still = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, { token: t.owner.token });
    expect(still.body.roles).toEqual([{ id: t.roles.owner, name: "owner" }]);
  });
});
