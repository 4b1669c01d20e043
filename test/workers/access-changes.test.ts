/**
 * A change to who may do what holds from the very next request: revoking or editing a grant, removing a role
 * or an assignment, suspending or removing a member, signing out. Sessions keep better-auth's rules: one due
 * for its sliding refresh is extended, an expired one is refused and deleted.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { session } from "../../src/db/schema";
import { addMember, api, createTenant, expectError, signUp } from "./support/api";

const db = getDb(env);
const DAY = 24 * 60 * 60 * 1000;
const rolesOf = (tenantId: string) => `/api/tenants/${tenantId}/roles`;
/** The `Cookie` header a browser would send back after this response. */
const cookieOf = (headers: Headers) =>
  headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");

describe("access changes reach the next request", () => {
  it("revoking or editing a grant", async () => {
    const t = await createTenant();
    const member = await addMember(t, null);
    const read = () => api(rolesOf(t.id), { token: member.token });
    expectError(await read(), 403, "forbidden");
    const created = await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { principalId: member.principalId, resource: "role:*", action: "read", effect: "allow" },
    });
    expect(created.status).toBe(201);
    expect((await read()).status).toBe(200);
    const grant = `/api/tenants/${t.id}/grants/${created.body.id}`;
    await api(grant, { method: "PATCH", token: t.owner.token, body: { effect: "deny" } });
    expectError(await read(), 403, "forbidden");
    await api(grant, { method: "PATCH", token: t.owner.token, body: { effect: "allow" } });
    expect((await read()).status).toBe(200);
    expect((await api(grant, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await read(), 403, "forbidden");
  });

  it("removing a role assignment, or the role itself", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const read = () => api(rolesOf(t.id), { token: member.token });
    expect((await read()).status).toBe(200);
    const assignment = (roleId: string) => `/api/tenants/${t.id}/principals/${member.principalId}/roles/${roleId}`;
    expect((await api(assignment(t.roles.member as string), { method: "DELETE", token: t.owner.token })).status).toBe(
      204,
    );
    expectError(await read(), 403, "forbidden");

    const role = await api(rolesOf(t.id), { token: t.owner.token, body: { name: "readers" } });
    await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { roleId: role.body.id, resource: "role:*", action: "read", effect: "allow" },
    });
    expect((await api(assignment(role.body.id), { method: "POST", token: t.owner.token })).status).toBe(204);
    expect((await read()).status).toBe(200);
    await api(assignment(role.body.id), { method: "DELETE", token: t.owner.token });
    expect((await api(`${rolesOf(t.id)}/${role.body.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(
      204,
    );
    expectError(await read(), 403, "forbidden");
  });

  it("suspending, then removing a member", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const principal = `/api/tenants/${t.id}/principals/${member.principalId}`;
    const read = () => api(rolesOf(t.id), { token: member.token });
    expect((await read()).status).toBe(200);
    await api(principal, { method: "PATCH", token: t.owner.token, body: { status: "suspended" } });
    expectError(await read(), 403, "forbidden");
    await api(principal, { method: "PATCH", token: t.owner.token, body: { status: "active" } });
    expect((await read()).status).toBe(200);
    expect((await api(principal, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await read(), 404, "not_found");
  });

  it("signing out, by bearer token and by cookie", async () => {
    const t = await createTenant();
    expect((await api(rolesOf(t.id), { token: t.owner.token })).status).toBe(200);
    expect((await api("/api/auth/sign-out", { method: "POST", token: t.owner.token })).status).toBe(200);
    expectError(await api(rolesOf(t.id), { token: t.owner.token }), 401, "unauthorized");

    const signIn = await api("/api/auth/sign-in/email", {
      body: { email: t.owner.email, password: t.owner.password },
    });
    const cookie = cookieOf(signIn.headers);
    expect((await api(rolesOf(t.id), { headers: { cookie } })).status).toBe(200);
    const out = await api("/api/auth/sign-out", {
      method: "POST",
      headers: { cookie, origin: "http://127.0.0.1:8787" },
    });
    expect(out.status).toBe(200);
    expectError(await api(rolesOf(t.id), { headers: { cookie } }), 401, "unauthorized");
    expectError(await api("/api/me", { headers: { cookie } }), 401, "unauthorized");
  });
});

describe("sessions keep better-auth's rules", () => {
  const tokenOf = (token: string) => token.split(".")[0] as string;
  const rowOf = async (token: string) =>
    (
      await db
        .select()
        .from(session)
        .where(eq(session.token, tokenOf(token)))
    )[0];

  it("a session due for its refresh is extended, on tenant routes and off them", async () => {
    const t = await createTenant();
    const user = await signUp();
    for (const [token, path] of [
      [t.owner.token, rolesOf(t.id)],
      [user.token, "/api/me"],
    ] as const) {
      // Two days into a seven-day session: past the one-day update age.
      const aged = new Date(Date.now() + 5 * DAY);
      await db
        .update(session)
        .set({ expiresAt: aged })
        .where(eq(session.token, tokenOf(token)));
      expect((await api(path, { token })).status).toBe(200);
      expect((await rowOf(token))?.expiresAt.getTime()).toBeGreaterThan(Date.now() + 6 * DAY);
    }
  });

  it("a session not to be remembered is never extended", async () => {
    const t = await createTenant();
    const signIn = await api("/api/auth/sign-in/email", {
      body: { email: t.owner.email, password: t.owner.password, rememberMe: false },
    });
    const cookie = cookieOf(signIn.headers);
    expect(cookie).toContain("dont_remember=");
    const token = signIn.headers.get("set-auth-token") as string;
    const day = (await rowOf(token))?.expiresAt.getTime() as number;
    expect(day).toBeLessThan(Date.now() + 2 * DAY);
    expect((await api(rolesOf(t.id), { headers: { cookie } })).status).toBe(200);
    expect((await rowOf(token))?.expiresAt.getTime()).toBe(day);
  });

  it("an expired session is refused and deleted", async () => {
    const t = await createTenant();
    await db
      .update(session)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(session.token, tokenOf(t.owner.token)));
    expectError(await api(rolesOf(t.id), { token: t.owner.token }), 401, "unauthorized");
    expect(await rowOf(t.owner.token)).toBeUndefined();
  });
});
