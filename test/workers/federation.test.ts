/** Federation trusts: create, list, withdraw; target checks; who may manage them. */
import { describe, expect, it } from "vitest";
import { addMember, api, createTenant, expectError, signUp } from "./support/api";

const trusts = (tenantId: string) => `/api/tenants/${tenantId}/federation`;

describe("federation trusts", () => {
  it("creates, lists and withdraws a trust", async () => {
    const t = await createTenant();
    const target = await createTenant();
    const created = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: target.id, direction: "outbound" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^ftr_[0-9a-f]{32}$/),
      tenantId: target.id,
      tenantName: `Tenant ${target.slug}`,
      tenantDomain: `${target.slug}.localhost`,
      direction: "outbound",
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    const list = await api(trusts(t.id), { token: t.owner.token });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [created.body], nextCursor: null });
    // The target sees nothing in its own list: a trust belongs to the tenant that wrote it.
    expect((await api(trusts(target.id), { token: target.owner.token })).body.data).toEqual([]);

    const gone = await api(`${trusts(t.id)}/${target.id}`, { method: "DELETE", token: t.owner.token });
    expect(gone.status).toBe(204);
    expect((await api(trusts(t.id), { token: t.owner.token })).body.data).toEqual([]);
    const again = await api(`${trusts(t.id)}/${target.id}`, { method: "DELETE", token: t.owner.token });
    expect(expectError(again, 404, "not_found").message).toBe("Trust not found");
  });

  it("refuses an unknown target, itself and a second trust toward the same tenant", async () => {
    const t = await createTenant();
    const target = await createTenant();
    const unknown = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: "tnt_00000000000000000000000000000000", direction: "inbound" },
    });
    expect(expectError(unknown, 404, "not_found").message).toBe("Target tenant not found");
    const self = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: t.id, direction: "bilateral" },
    });
    expectError(self, 400, "bad_request");
    const first = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: target.id, direction: "inbound" },
    });
    expect(first.status).toBe(201);
    const duplicate = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: target.id, direction: "bilateral" },
    });
    expectError(duplicate, 409, "conflict");
    const list = await api(trusts(t.id), { token: t.owner.token });
    expect(list.body.data.map((x: { direction: string }) => x.direction)).toEqual(["inbound"]);
    // The reverse trust is the target's own statement and is allowed.
    const reverse = await api(trusts(target.id), {
      token: target.owner.token,
      body: { targetTenantId: t.id, direction: "outbound" },
    });
    expect(reverse.status).toBe(201);
  });

  it("validates the body and the cursor", async () => {
    const t = await createTenant();
    const target = await createTenant();
    const badDirection = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: target.id, direction: "sideways" },
    });
    expect(expectError(badDirection, 400, "validation_failed").details.issues[0].path).toBe("direction");
    expectError(
      await api(trusts(t.id), { token: t.owner.token, body: { direction: "inbound" } }),
      400,
      "validation_failed",
    );
    expectError(await api(trusts(t.id), { token: t.owner.token, body: "{not json" }), 400, "invalid_json");
    expectError(await api(`${trusts(t.id)}?cursor=nope!`, { token: t.owner.token }), 400, "invalid_cursor");
    expectError(await api(`${trusts(t.id)}?limit=0`, { token: t.owner.token }), 400, "validation_failed");
    expect((await api(trusts(t.id), { token: t.owner.token })).body.data).toEqual([]);
  });

  it("pages through trusts", async () => {
    const t = await createTenant();
    const targets = [await createTenant(), await createTenant(), await createTenant()];
    for (const target of targets) {
      const res = await api(trusts(t.id), {
        token: t.owner.token,
        body: { targetTenantId: target.id, direction: "outbound" },
      });
      expect(res.status).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : "?limit=2";
      const page = await api(`${trusts(t.id)}${query}`, { token: t.owner.token });
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((x: { tenantId: string }) => x.tenantId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(targets.map((x) => x.id).sort());
  });

  it("needs tenant manage to change trusts and tenant read to list them", async () => {
    const t = await createTenant();
    const target = await createTenant();
    const member = await addMember(t, "member");
    const noRole = await addMember(t, null);
    const denied = await api(trusts(t.id), {
      token: member.token,
      body: { targetTenantId: target.id, direction: "outbound" },
    });
    expectError(denied, 403, "forbidden");
    expect((await api(trusts(t.id), { token: member.token })).body.data).toEqual([]);

    const created = await api(trusts(t.id), {
      token: t.owner.token,
      body: { targetTenantId: target.id, direction: "outbound" },
    });
    expect(created.status).toBe(201);
    expectError(await api(`${trusts(t.id)}/${target.id}`, { method: "DELETE", token: member.token }), 403, "forbidden");
    expect((await api(trusts(t.id), { token: t.owner.token })).body.data).toHaveLength(1);
    expectError(await api(trusts(t.id), { token: noRole.token }), 403, "forbidden");

    const admin = await addMember(t, "admin");
    expect((await api(`${trusts(t.id)}/${target.id}`, { method: "DELETE", token: admin.token })).status).toBe(204);
  });

  it("hides a tenant's trusts from users of other tenants", async () => {
    const t = await createTenant();
    const target = await createTenant();
    await api(trusts(t.id), { token: t.owner.token, body: { targetTenantId: target.id, direction: "outbound" } });
    const stranger = await signUp("Stranger");
    expectError(await api(trusts(t.id), { token: stranger.token }), 404, "not_found");
    // Even the target's owner is a stranger to t.
    expectError(await api(trusts(t.id), { token: target.owner.token }), 404, "not_found");
    const post = await api(trusts(t.id), {
      token: target.owner.token,
      body: { targetTenantId: target.id, direction: "outbound" },
    });
    expectError(post, 404, "not_found");
    expectError(
      await api(`${trusts(t.id)}/${target.id}`, { method: "DELETE", token: target.owner.token }),
      404,
      "not_found",
    );
    expect((await api(trusts(t.id), { token: t.owner.token })).body.data).toHaveLength(1);
  });
});

describe("federation, offerings and wallets in the API description", () => {
  it("documents every route once, with the search and transaction filters", async () => {
    const doc = (await api("/openapi.json")).body;
    const paths = Object.keys(doc.paths);
    expect(paths.some((p) => p.includes("federation/federation"))).toBe(false);
    const expected = {
      "/api/tenants/{tenantId}/federation": ["get", "post"],
      "/api/tenants/{tenantId}/federation/{targetTenantId}": ["delete"],
      "/api/tenants/{tenantId}/offerings": ["get", "post"],
      "/api/tenants/{tenantId}/offerings/{offeringId}": ["get", "patch", "delete"],
      "/api/tenants/{tenantId}/wallets": ["get", "post"],
      "/api/tenants/{tenantId}/wallets/{walletId}": ["get", "patch", "delete"],
      "/api/tenants/{tenantId}/wallets/{walletId}/transactions": ["get", "post"],
    };
    for (const [path, methods] of Object.entries(expected)) {
      expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual([...methods].sort());
    }
    const params = (path: string) =>
      doc.paths[path].get.parameters
        .filter((p: { in: string }) => p.in === "query")
        .map((p: { name: string }) => p.name);
    expect(params("/api/tenants/{tenantId}/offerings")).toEqual(
      expect.arrayContaining(["name", "minPrice", "maxPrice", "paymentMethod", "currency", "federated", "cursor"]),
    );
    expect(params("/api/tenants/{tenantId}/wallets/{walletId}/transactions")).toEqual(
      expect.arrayContaining(["direction", "status", "agentId", "requestId", "startTime", "endTime", "cursor"]),
    );
    const tags = doc.tags.map((t: { name: string }) => t.name);
    expect(tags).toEqual(expect.arrayContaining(["Federation", "Discovery", "Wallets"]));
  });
});
