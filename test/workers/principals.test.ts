/** Principals: list, get, status changes, deletion, invitations; grants, isolation and bad input. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { agent } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { addMember, api, createTenant, expectError, signUp } from "./support/api";

const base = (tenantId: string) => `/api/tenants/${tenantId}`;

describe("principals", () => {
  it("lists principals with filters and pagination; deactivated ones only on request", async () => {
    const t = await createTenant();
    const members = [await addMember(t), await addMember(t), await addMember(t)];
    await api(`${base(t.id)}/principals/${members[0]?.principalId}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { status: "deactivated" },
    });
    const all = await api(`${base(t.id)}/principals`, { token: t.owner.token });
    expect(all.status).toBe(200);
    expect(all.body.data).toHaveLength(3);
    expect(all.body.nextCursor).toBeNull();
    const deactivated = await api(`${base(t.id)}/principals?status=deactivated`, { token: t.owner.token });
    expect(deactivated.body.data.map((p: { id: string }) => p.id)).toEqual([members[0]?.principalId]);

    const first = await api(`${base(t.id)}/principals?limit=2`, { token: t.owner.token });
    expect(first.body.data).toHaveLength(2);
    const second = await api(`${base(t.id)}/principals?limit=2&cursor=${first.body.nextCursor}`, {
      token: t.owner.token,
    });
    expect(second.body.data).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    const ids = [...first.body.data, ...second.body.data].map((p: { id: string }) => p.id);
    expect(new Set(ids).size).toBe(3);

    expectError(await api(`${base(t.id)}/principals?kind=robot`, { token: t.owner.token }), 400, "validation_failed");
    expectError(await api(`${base(t.id)}/principals?limit=0`, { token: t.owner.token }), 400, "validation_failed");
    expectError(await api(`${base(t.id)}/principals?cursor=%%%`, { token: t.owner.token }), 400, "invalid_cursor");
  });

  it("needs principal read: a member without a role gets 403", async () => {
    const t = await createTenant();
    const bare = await addMember(t, null);
    expectError(await api(`${base(t.id)}/principals`, { token: bare.token }), 403, "forbidden");
    expectError(await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, { token: bare.token }), 403, "forbidden");
  });

  it("gets one principal; ids of another tenant are 404", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const got = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, { token: t.owner.token });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: t.ownerPrincipalId, tenantId: t.id, roles: [{ name: "owner" }] });
    expectError(
      await api(`${base(t.id)}/principals/${other.ownerPrincipalId}`, { token: t.owner.token }),
      404,
      "not_found",
    );
    expectError(
      await api(`${base(other.id)}/principals/${t.ownerPrincipalId}`, { token: t.owner.token }),
      404,
      "not_found",
    );
  });

  it("changes status with manage; never leaves a tenant without an active owner", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    expectError(
      await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, {
        method: "PATCH",
        token: member.token,
        body: { status: "suspended" },
      }),
      403,
      "forbidden",
    );
    const last = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { status: "suspended" },
    });
    expect(expectError(last, 409, "conflict").message).toMatch(/at least one active owner/);
    expectError(
      await api(`${base(t.id)}/principals/${member.principalId}`, {
        method: "PATCH",
        token: t.owner.token,
        body: { status: "invited" },
      }),
      400,
      "validation_failed",
    );
    // With a second owner, the first may step down.
    const coOwner = await addMember(t, "owner");
    const stepDown = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, {
      method: "PATCH",
      token: coOwner.token,
      body: { status: "suspended" },
    });
    expect(stepDown.status).toBe(200);
    expect(stepDown.body.status).toBe("suspended");
  });

  it("deletes a principal with manage; a referenced principal is a 409, not a 500", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const creator = await addMember(t, "admin");
    await getDb(env)
      .insert(agent)
      .values({ id: newId("agent"), tenantId: t.id, creatorPrincipalId: creator.principalId, name: "Helper" });
    const referenced = await api(`${base(t.id)}/principals/${creator.principalId}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expect(expectError(referenced, 409, "conflict").message).toMatch(/1 agent definition; set its status/);

    expectError(
      await api(`${base(t.id)}/principals/${member.principalId}`, { method: "DELETE", token: member.token }),
      403,
      "forbidden",
    );
    // The member's own credential must not outlive them as a tenant-wide one.
    const provider = await api(`${base(t.id)}/providers`, {
      token: t.owner.token,
      body: { name: "llm", plugin: "openai", metadata: { baseURL: "https://api.example.test/v1" } },
    });
    const personal = await api(`${base(t.id)}/credentials`, {
      token: t.owner.token,
      body: {
        name: "members-key",
        type: "api_key",
        providerId: provider.body.id,
        principalId: member.principalId,
        secret: "sk-personal",
      },
    });
    expect(personal.status, JSON.stringify(personal.body)).toBe(201);
    const del = await api(`${base(t.id)}/principals/${member.principalId}`, { method: "DELETE", token: t.owner.token });
    expect(del.status).toBe(204);
    expectError(await api(`${base(t.id)}/credentials/${personal.body.id}`, { token: t.owner.token }), 404, "not_found");
    expectError(
      await api(`${base(t.id)}/principals/${member.principalId}`, { token: t.owner.token }),
      404,
      "not_found",
    );
    expectError(await api(base(t.id), { token: member.token }), 404, "not_found");
    const lastOwner = await api(`${base(t.id)}/principals/${t.ownerPrincipalId}`, {
      method: "DELETE",
      token: t.owner.token,
    });
    expectError(lastOwner, 409, "conflict");
  });
});

describe("invitations", () => {
  it("invites a registered user with a role; they accept and gain the role's permissions", async () => {
    const t = await createTenant();
    const invitee = await signUp("Grace");
    const invite = await api(`${base(t.id)}/members/invite`, {
      token: t.owner.token,
      body: { email: invitee.email.toUpperCase(), roleId: t.roles.admin },
    });
    expect(invite.status).toBe(201);
    expect(invite.body).toMatchObject({ status: "invited", displayName: "Grace", roles: [{ name: "admin" }] });

    const pending = await api("/api/me/invitations", { token: invitee.token });
    expect(pending.body.data).toEqual([
      expect.objectContaining({ principalId: invite.body.id, tenantId: t.id, status: "invited" }),
    ]);
    const accepted = await api(`/api/me/invitations/${invite.body.id}/accept`, {
      method: "POST",
      token: invitee.token,
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ status: "active", roles: [{ name: "admin" }] });
    expect((await api(`${base(t.id)}/principals`, { token: invitee.token })).status).toBe(200);
    expectError(
      await api(`/api/me/invitations/${invite.body.id}/accept`, { method: "POST", token: invitee.token }),
      409,
      "conflict",
    );
  });

  it("only the invited user can accept or decline; declining removes the invitation", async () => {
    const t = await createTenant();
    const invitee = await signUp();
    const invite = await api(`${base(t.id)}/members/invite`, { token: t.owner.token, body: { email: invitee.email } });
    const intruder = await signUp();
    expectError(
      await api(`/api/me/invitations/${invite.body.id}/accept`, { method: "POST", token: intruder.token }),
      404,
      "not_found",
    );
    expectError(await api(`/api/me/invitations/${invite.body.id}/accept`, { method: "POST" }), 401, "unauthorized");
    const declined = await api(`/api/me/invitations/${invite.body.id}/decline`, {
      method: "POST",
      token: invitee.token,
    });
    expect(declined.status).toBe(204);
    expect((await api("/api/me/invitations", { token: invitee.token })).body.data).toEqual([]);
    const again = await api(`${base(t.id)}/members/invite`, { token: t.owner.token, body: { email: invitee.email } });
    expect(again.status).toBe(201);
  });

  it("refuses unknown users, duplicates, foreign roles, escalation and bad bodies", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const invitee = await signUp();
    expectError(
      await api(`${base(t.id)}/members/invite`, { token: t.owner.token, body: { email: "nobody@example.test" } }),
      404,
      "not_found",
    );
    expectError(
      await api(`${base(t.id)}/members/invite`, { token: t.owner.token, body: { email: t.owner.email } }),
      409,
      "conflict",
    );
    const foreignRole = await api(`${base(t.id)}/members/invite`, {
      token: t.owner.token,
      body: { email: invitee.email, roleId: other.roles.owner },
    });
    expect(expectError(foreignRole, 404, "not_found").message).toBe("Role not found");
    const admin = await addMember(t, "admin");
    const escalate = await api(`${base(t.id)}/members/invite`, {
      token: admin.token,
      body: { email: invitee.email, roleId: t.roles.owner },
    });
    expect(expectError(escalate, 403, "forbidden").message).toMatch(/cannot confer/);
    expectError(
      await api(`${base(t.id)}/members/invite`, { token: t.owner.token, body: { email: "not-an-email" } }),
      400,
      "validation_failed",
    );
    const member = await addMember(t, "member");
    expectError(
      await api(`${base(t.id)}/members/invite`, { token: member.token, body: { email: invitee.email } }),
      403,
      "forbidden",
    );
    // Nothing was written by the refused attempts.
    expect((await api("/api/me/invitations", { token: invitee.token })).body.data).toEqual([]);
    expectError(
      await api(`${base(t.id)}/members/invite`, { token: other.owner.token, body: { email: invitee.email } }),
      404,
      "not_found",
    );
  });
});
