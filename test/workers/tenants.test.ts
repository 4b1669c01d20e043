/** Tenants: creation (atomic, seeded roles and grants), reading, renaming; membership and isolation. */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { grant, principal, role, tenant } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { createTenant as createTenantRows } from "../../src/tenancy/tenants";
import { addMember, api, createTenant, expectError, signUp, unique } from "./support/api";

describe("POST /api/tenants", () => {
  it("creates the tenant with owner/admin/member roles and makes the caller its owner", async () => {
    const owner = await signUp();
    const slug = unique("acme");
    const res = await api("/api/tenants", { token: owner.token, body: { name: "Acme", slug } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: "Acme", slug, domain: `${slug}.localhost`, parentId: null });
    expect(res.body).not.toHaveProperty("config");
    expect(res.body.id).toMatch(/^tnt_[0-9a-f]{32}$/);

    const roles = await api(`/api/tenants/${res.body.id}/roles`, { token: owner.token });
    expect(roles.body.data.map((r: { name: string }) => r.name).sort()).toEqual(["admin", "member", "owner"]);
    expect(roles.body.data.every((r: { isSystem: boolean }) => r.isSystem)).toBe(true);

    const grants = await api(`/api/tenants/${res.body.id}/grants?limit=100`, { token: owner.token });
    const summary = grants.body.data
      .map(
        (g: { roleName: string; resource: string; action: string; origin: string }) =>
          `${g.roleName} ${g.resource} ${g.action} ${g.origin}`,
      )
      .sort();
    expect(summary).toEqual([
      "admin * create system",
      "admin * manage system",
      "admin * read system",
      "admin * write system",
      "member * read system",
      "owner * * system",
    ]);

    const principals = await api(`/api/tenants/${res.body.id}/principals`, { token: owner.token });
    expect(principals.body.data).toHaveLength(1);
    expect(principals.body.data[0]).toMatchObject({
      kind: "user",
      refId: owner.userId,
      status: "active",
      displayName: owner.name,
      email: owner.email,
      roles: [{ name: "owner" }],
    });
  });

  it("authenticates before validating: anonymous is 401 whatever the body; a signed-in bad body is 400", async () => {
    expectError(await api("/api/tenants", { body: {} }), 401, "unauthorized");
    expectError(await api("/api/tenants", { body: { name: "X", slug: unique("s") } }), 401, "unauthorized");
    const owner = await signUp();
    const bad = expectError(await api("/api/tenants", { token: owner.token, body: {} }), 400, "validation_failed");
    expect(bad.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(["name", "slug"]);
  });

  it("rejects bad slugs, wrong types and unknown parents", async () => {
    const owner = await signUp();
    for (const slug of ["Upper", "-lead", "trail-", "with space", "", "a".repeat(64), "ünï"]) {
      expectError(
        await api("/api/tenants", { token: owner.token, body: { name: "X", slug } }),
        400,
        "validation_failed",
      );
    }
    expectError(
      await api("/api/tenants", { token: owner.token, body: { name: 42, slug: "ok" } }),
      400,
      "validation_failed",
    );
    expectError(await api("/api/tenants", { token: owner.token, body: "[1,2" }), 400, "invalid_json");
    const orphan = await api("/api/tenants", {
      token: owner.token,
      body: { name: "Child", slug: unique("c"), parentId: "tnt_00000000000000000000000000000000" },
    });
    expectError(orphan, 404, "not_found");
  });

  it("refuses a slug that is taken with 409 conflict", async () => {
    const t = await createTenant();
    const other = await signUp();
    const res = await api("/api/tenants", { token: other.token, body: { name: "Copy", slug: t.slug } });
    const error = expectError(res, 409, "conflict");
    expect(error.message).toBe("Slug already taken");
  });

  it("creates a child tenant only with manage on the parent", async () => {
    const parent = await createTenant();
    const child = await api("/api/tenants", {
      token: parent.owner.token,
      body: { name: "Child", slug: unique("child"), parentId: parent.id },
    });
    expect(child.status).toBe(201);
    expect(child.body.parentId).toBe(parent.id);

    const member = await addMember(parent, "member");
    const denied = await api("/api/tenants", {
      token: member.token,
      body: { name: "Nope", slug: unique("nope"), parentId: parent.id },
    });
    expectError(denied, 403, "forbidden");
    const stranger = await signUp();
    const hidden = await api("/api/tenants", {
      token: stranger.token,
      body: { name: "Nope", slug: unique("nope"), parentId: parent.id },
    });
    expectError(hidden, 404, "not_found");
  });

  it("is all-or-nothing: a failure in the middle of the batch leaves no tenant, role or grant", async () => {
    const owner = await signUp();
    const db = getDb(env);
    const slug = unique("atomic");
    // The third role id collides with an existing role: the batch fails after the tenant insert.
    const existing = await createTenant();
    let n = 0;
    const ids = (kind: Parameters<typeof newId>[0]) => {
      n += 1;
      return kind === "role" && n === 5 ? (existing.roles.member as string) : newId(kind);
    };
    await expect(
      createTenantRows(db, { name: "Atomic", slug, parentId: null, ownerUserId: owner.userId }, ids),
    ).rejects.toThrow();
    expect(await db.select().from(tenant).where(eq(tenant.slug, slug))).toEqual([]);
    expect(await db.select().from(principal).where(eq(principal.refId, owner.userId))).toEqual([]);
    expect(
      (
        await db
          .select()
          .from(role)
          .where(eq(role.id, existing.roles.member as string))
      ).length,
    ).toBe(1);
    expect((await db.select().from(grant).where(eq(grant.tenantId, existing.id))).length).toBe(6);
  });
});

describe("GET and PATCH /api/tenants/:tenantId", () => {
  it("shows the tenant to members; strangers and unknown ids get the same 404", async () => {
    const t = await createTenant();
    const member = await addMember(t, "member");
    const seen = await api(`/api/tenants/${t.id}`, { token: member.token });
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ id: t.id, slug: t.slug });

    const stranger = await createTenant();
    const hidden = expectError(await api(`/api/tenants/${t.id}`, { token: stranger.owner.token }), 404, "not_found");
    const missing = expectError(await api("/api/tenants/tnt_nope", { token: stranger.owner.token }), 404, "not_found");
    expect(hidden.message).toBe(missing.message);
    expectError(await api(`/api/tenants/${t.id}`), 401, "unauthorized");
  });

  it("refuses suspended members and pending invitations with 403", async () => {
    const t = await createTenant();
    const member = await addMember(t, "member");
    const suspend = await api(`/api/tenants/${t.id}/principals/${member.principalId}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { status: "suspended" },
    });
    expect(suspend.status).toBe(200);
    const error = expectError(await api(`/api/tenants/${t.id}`, { token: member.token }), 403, "forbidden");
    expect(error.message).toMatch(/not active/);

    const invited = await signUp();
    const inv = await api(`/api/tenants/${t.id}/members/invite`, {
      token: t.owner.token,
      body: { email: invited.email },
    });
    expect(inv.status).toBe(201);
    const pending = expectError(await api(`/api/tenants/${t.id}`, { token: invited.token }), 403, "forbidden");
    expect(pending.message).toContain(`/api/me/invitations/${inv.body.id}/accept`);
  });

  it("renames with tenant manage; a member without it gets 403 and nothing changes", async () => {
    const t = await createTenant();
    const member = await addMember(t, "member");
    expectError(
      await api(`/api/tenants/${t.id}`, { method: "PATCH", token: member.token, body: { name: "Hijacked" } }),
      403,
      "forbidden",
    );
    const admin = await addMember(t, "admin");
    const renamed = await api(`/api/tenants/${t.id}`, {
      method: "PATCH",
      token: admin.token,
      body: { name: "Renamed", config: { region: "eu" } },
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: "Renamed", config: { region: "eu" } });
    const read = await api(`/api/tenants/${t.id}`, { token: member.token });
    expect(read.body.name).toBe("Renamed");
    expectError(
      await api(`/api/tenants/${t.id}`, { method: "PATCH", token: admin.token, body: { name: "" } }),
      400,
      "validation_failed",
    );
    const other = await createTenant();
    expectError(
      await api(`/api/tenants/${t.id}`, { method: "PATCH", token: other.owner.token, body: { name: "X" } }),
      404,
      "not_found",
    );
  });
});
