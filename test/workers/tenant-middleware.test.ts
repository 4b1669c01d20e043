/**
 * The tenant middleware: pass-through when the context is already resolved (git token auth does this),
 * context set for an active member, 401 without a user, 403 for a suspended member.
 */
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { AppEnv } from "../../src/http/context";
import { handleError } from "../../src/http/error-envelope";
import { resolveTenant } from "../../src/http/middleware/tenant";
import { addMember, api, createTenant, expectError } from "./support/api";

describe("tenant middleware", () => {
  it("sets tenant, principal and grants for an active member", async () => {
    const t = await createTenant();
    const app = createApp();
    app.get("/api/tenants/:tenantId/whoami", (c) =>
      c.json({ tenant: c.get("tenant").id, principal: c.get("principal").id, grants: c.get("grants").length }),
    );
    const res = await app.request(
      `/api/tenants/${t.id}/whoami`,
      { headers: { authorization: `Bearer ${t.owner.token}` } },
      env,
    );
    expect(await res.json()).toEqual({ tenant: t.id, principal: t.ownerPrincipalId, grants: 1 });
  });

  it("passes through untouched when tenant and principal are already resolved", async () => {
    // No user and a tenant id that does not exist: any lookup would answer 401 or 404.
    const app = new Hono<AppEnv>();
    app.onError(handleError);
    app.use("/api/tenants/:tenantId/*", async (c, next) => {
      c.set("user", null);
      c.set("tenant", { id: "tnt_resolved_elsewhere" } as AppEnv["Variables"]["tenant"]);
      c.set("principal", { id: "prn_resolved_elsewhere" } as AppEnv["Variables"]["principal"]);
      await next();
    });
    app.use("/api/tenants/:tenantId/*", resolveTenant());
    app.get("/api/tenants/:tenantId/x", (c) =>
      c.json({ tenant: c.get("tenant").id, principal: c.get("principal").id }),
    );
    const res = await app.request("/api/tenants/tnt_missing/x", {}, env);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ tenant: "tnt_resolved_elsewhere", principal: "prn_resolved_elsewhere" });
  });

  it("401 without a user, 403 for a suspended member", async () => {
    const t = await createTenant();
    expectError(await api(`/api/tenants/${t.id}/roles`), 401, "unauthorized");
    const member = await addMember(t);
    await api(`/api/tenants/${t.id}/principals/${member.principalId}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { status: "suspended" },
    });
    expectError(await api(`/api/tenants/${t.id}/roles`, { token: member.token }), 403, "forbidden");
  });
});
