/**
 * What `npm start` does after the server is up: seed the demo user and tenant through the API. Run
 * twice against the real server, it must converge (sign in the second time, reuse the tenant).
 */
import { describe, expect, inject, it } from "vitest";
import { demo, seedDemo } from "../../scripts/seed.mjs";

describe("demo seeding", () => {
  it("creates the demo user and tenant once, then reuses them", async () => {
    const hubUrl = inject("hubUrl");
    const who = { ...demo, email: `demo-${Date.now()}@agent-hub.local`, tenantSlug: `demo-${Date.now()}` };
    const first = await seedDemo(hubUrl, who);
    expect(first.userCreated).toBe(true);
    const second = await seedDemo(hubUrl, who);
    expect(second.userCreated).toBe(false);
    expect(second.tenantId).toBe(first.tenantId);

    const res = await fetch(`${hubUrl}/api/tenants/${first.tenantId}`, {
      headers: { authorization: `Bearer ${second.token}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: first.tenantId, slug: who.tenantSlug, name: demo.tenantName });
  });
});
