/** Offerings: CRUD tied to this tenant's agents, search by name, exact price, payment method, and federation. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { agent, offering } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { addMember, api, createTenant, expectError, signUp, type TestTenant, unique } from "./support/api";

const offerings = (tenantId: string) => `/api/tenants/${tenantId}/offerings`;

/** Agent definitions are another route's business; a row is all an offering needs. */
async function createAgent(t: TestTenant, name = "Reviewer"): Promise<string> {
  const id = newId("agent");
  await getDb(env).insert(agent).values({ id, tenantId: t.id, creatorPrincipalId: t.ownerPrincipalId, name });
  return id;
}

async function offer(t: TestTenant, agentId: string, body: Record<string, unknown>) {
  const res = await api(offerings(t.id), { token: t.owner.token, body: { agentId, ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; name: string; tenantId: string };
}

async function search(t: TestTenant, query: string, token = t.owner.token): Promise<string[]> {
  const res = await api(`${offerings(t.id)}?${query}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data.map((o: { name: string }) => o.name);
}

describe("offerings CRUD", () => {
  it("creates, reads, edits and withdraws an offering", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t, "Contract bot");
    const pricing = {
      base: { amount: "12.50", currency: "USD" },
      methods: ["card", "credits"],
      negotiable: true,
      bounds: { min: "10", max: "20" },
    };
    const created = await api(offerings(t.id), {
      token: t.owner.token,
      body: { agentId, name: "Contract review", description: "Reads contracts", pricing, schema: { type: "object" } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^ofr_[0-9a-f]{32}$/),
      agentId,
      agentName: "Contract bot",
      tenantId: t.id,
      name: "Contract review",
      description: "Reads contracts",
      pricing,
      schema: { type: "object" },
    });
    const id = created.body.id;
    const read = await api(`${offerings(t.id)}/${id}`, { token: t.owner.token });
    expect(read.body).toEqual(created.body);

    const patched = await api(`${offerings(t.id)}/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "Contract triage", pricing: null, description: null },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: "Contract triage", description: null, schema: { type: "object" } });
    expect(patched.body).not.toHaveProperty("pricing");
    expect((await api(`${offerings(t.id)}/${id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expect(expectError(await api(`${offerings(t.id)}/${id}`, { token: t.owner.token }), 404, "not_found").message).toBe(
      "Offering not found",
    );
    expectError(await api(`${offerings(t.id)}/${id}`, { method: "DELETE", token: t.owner.token }), 404, "not_found");
    const patchGone = await api(`${offerings(t.id)}/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "x" },
    });
    expectError(patchGone, 404, "not_found");
  });

  it("only offers agents of the same tenant", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const foreignAgent = await createAgent(other);
    const res = await api(offerings(t.id), { token: t.owner.token, body: { agentId: foreignAgent, name: "Stolen" } });
    expect(expectError(res, 404, "not_found").message).toBe("Agent not found in this tenant");
    const missing = await api(offerings(t.id), {
      token: t.owner.token,
      body: { agentId: "agt_00000000000000000000000000000000", name: "Ghost" },
    });
    expectError(missing, 404, "not_found");
    expect(await search(t, "")).toEqual([]);
  });

  it("rejects prices that are not exact non-negative decimal strings", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t);
    for (const amount of ["1e5", "-3", "abc", "", " 1", "1.", ".5", "0x10", "1.0000000000000000001"]) {
      const res = await api(offerings(t.id), {
        token: t.owner.token,
        body: { agentId, name: "Bad", pricing: { base: { amount, currency: "USD" } } },
      });
      expect(expectError(res, 400, "validation_failed").details.issues[0].path).toBe("pricing.base.amount");
    }
    const numeric = await api(offerings(t.id), {
      token: t.owner.token,
      body: { agentId, name: "Bad", pricing: { base: { amount: 5, currency: "USD" } } },
    });
    expectError(numeric, 400, "validation_failed");
    const inverted = await api(offerings(t.id), {
      token: t.owner.token,
      body: { agentId, name: "Bad", pricing: { bounds: { min: "10", max: "9.5" } } },
    });
    expectError(inverted, 400, "validation_failed");
    expectError(
      await api(offerings(t.id), { token: t.owner.token, body: { agentId, name: " " } }),
      400,
      "validation_failed",
    );
    expectError(
      await api(offerings(t.id), { token: t.owner.token, body: { name: "No agent" } }),
      400,
      "validation_failed",
    );
    expect(await search(t, "")).toEqual([]);

    for (const q of [
      "minPrice=1e5",
      "maxPrice=-3",
      "minPrice=abc",
      "minPrice=2&maxPrice=1",
      "limit=101",
      "cursor=%%%",
    ]) {
      const res = await api(`${offerings(t.id)}?${q}`, { token: t.owner.token });
      expect(res.status, q).toBe(400);
      expect(["validation_failed", "invalid_cursor"]).toContain(res.body.error.code);
    }
    expectError(await api(`${offerings(t.id)}?cursor=bm90LWpzb24`, { token: t.owner.token }), 400, "invalid_cursor");
    expectError(await api(`${offerings(t.id)}?federated=maybe`, { token: t.owner.token }), 400, "validation_failed");
  });
});

describe("offerings search", () => {
  it("filters by name, exact price range, currency and payment method", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t);
    const price = (amount: string, currency = "USD", methods = ["card"]) => ({
      base: { amount, currency },
      methods,
    });
    await offer(t, agentId, { name: "Tiny Translation", pricing: price("2") });
    await offer(t, agentId, { name: "Cheap translation", pricing: price("9.99", "USD", ["card", "credits"]) });
    await offer(t, agentId, { name: "Exact ten", pricing: price("10") });
    // 10 plus 10^-18: equal to 10 in floating point, more than 10 exactly.
    await offer(t, agentId, { name: "Just over ten", pricing: price("10.000000000000000001") });
    // "100" sorts before "9.99" as a string.
    await offer(t, agentId, { name: "Hundred", pricing: price("100", "EUR", ["crypto"]) });
    await offer(t, agentId, { name: "Free-form translation" });

    expect((await search(t, "")).sort()).toEqual(
      [
        "Cheap translation",
        "Exact ten",
        "Free-form translation",
        "Hundred",
        "Just over ten",
        "Tiny Translation",
      ].sort(),
    );
    expect((await search(t, "name=TRANSLATION")).sort()).toEqual(
      ["Cheap translation", "Free-form translation", "Tiny Translation"].sort(),
    );
    expect(await search(t, "name=%25")).toEqual([]);
    expect((await search(t, "maxPrice=10")).sort()).toEqual(
      ["Cheap translation", "Exact ten", "Tiny Translation"].sort(),
    );
    expect((await search(t, "minPrice=10")).sort()).toEqual(["Exact ten", "Hundred", "Just over ten"].sort());
    expect(await search(t, "minPrice=10.000000000000000002&maxPrice=99")).toEqual([]);
    expect(await search(t, "minPrice=10.000000000000000001&maxPrice=99.999")).toEqual(["Just over ten"]);
    expect(await search(t, "minPrice=9.99&maxPrice=9.990")).toEqual(["Cheap translation"]);
    expect((await search(t, "minPrice=3")).sort()).toEqual(
      ["Exact ten", "Hundred", "Just over ten", "Cheap translation"].sort(),
    );
    expect(await search(t, "minPrice=0&currency=EUR")).toEqual(["Hundred"]);
    expect(await search(t, "paymentMethod=crypto")).toEqual(["Hundred"]);
    expect(await search(t, "paymentMethod=credits")).toEqual(["Cheap translation"]);
    expect(await search(t, "paymentMethod=cred")).toEqual([]);
    expect(await search(t, "paymentMethod=card&name=tiny&maxPrice=2")).toEqual(["Tiny Translation"]);
  });

  it("pages through price-filtered results beyond one scan batch", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t);
    const db = getDb(env);
    const start = Date.now() - 1_000_000;
    // Five expensive offerings, older than 250 cheap ones: the filter has to look past the first rows.
    const rows = Array.from({ length: 255 }, (_, i) => ({
      id: newId("offering"),
      agentId,
      tenantId: t.id,
      name: i < 5 ? `Premium ${i}` : `Budget ${i}`,
      pricing: { base: { amount: i < 5 ? `${50 + i}.5` : "1.25", currency: "USD" } },
      createdAt: new Date(start + i * 10),
      updatedAt: new Date(start + i * 10),
    }));
    for (let i = 0; i < rows.length; i += 10) await db.insert(offering).values(rows.slice(i, i + 10));

    const names: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `minPrice=50&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await api(`${offerings(t.id)}?${query}`, { token: t.owner.token });
      expect(page.status).toBe(200);
      names.push(...page.body.data.map((o: { name: string }) => o.name));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    expect(names).toEqual(["Premium 4", "Premium 3", "Premium 2", "Premium 1", "Premium 0"]);
    expect(pages).toBe(3);
    const cheap = await api(`${offerings(t.id)}?maxPrice=1.25&limit=100`, { token: t.owner.token });
    expect(cheap.body.data).toHaveLength(100);
    expect(cheap.body.nextCursor).not.toBeNull();
  });

  it("includes offerings of tenants that trust the caller's tenant, marked with their tenant", async () => {
    const seller = await createTenant();
    const buyer = await createTenant();
    const outsider = await createTenant();
    const sellerAgent = await createAgent(seller);
    const buyerAgent = await createAgent(buyer);
    const tag = unique("fed");
    const sold = await offer(seller, sellerAgent, {
      name: `${tag} seller`,
      pricing: { base: { amount: "5", currency: "USD" }, methods: ["credits"] },
    });
    await offer(buyer, buyerAgent, { name: `${tag} buyer`, pricing: { base: { amount: "7", currency: "USD" } } });
    const trust = (from: TestTenant, to: TestTenant, direction: string) =>
      api(`/api/tenants/${from.id}/federation`, {
        token: from.owner.token,
        body: { targetTenantId: to.id, direction },
      });

    expect(await search(buyer, `name=${tag}`)).toEqual([`${tag} buyer`]);
    // The buyer declaring trust in the seller exposes the buyer, never the seller.
    expect((await trust(buyer, seller, "bilateral")).status).toBe(201);
    expect(await search(buyer, `name=${tag}`)).toEqual([`${tag} buyer`]);
    expect(await search(seller, `name=${tag}`)).toEqual([`${tag} buyer`, `${tag} seller`]);
    expectError(await api(`${offerings(buyer.id)}/${sold.id}`, { token: buyer.owner.token }), 404, "not_found");

    // An `inbound` trust written by the seller exposes nothing either.
    expect((await trust(seller, buyer, "inbound")).status).toBe(201);
    expect(await search(buyer, `name=${tag}`)).toEqual([`${tag} buyer`]);
    await api(`/api/tenants/${seller.id}/federation/${buyer.id}`, { method: "DELETE", token: seller.owner.token });

    expect((await trust(seller, buyer, "outbound")).status).toBe(201);
    const found = await api(`${offerings(buyer.id)}?name=${tag}`, { token: buyer.owner.token });
    expect(found.body.data.map((o: { name: string; tenantId: string }) => [o.name, o.tenantId])).toEqual([
      [`${tag} buyer`, buyer.id],
      [`${tag} seller`, seller.id],
    ]);
    // Filters apply to federated offerings too.
    expect(await search(buyer, `name=${tag}&maxPrice=6`)).toEqual([`${tag} seller`]);
    expect(await search(buyer, `name=${tag}&paymentMethod=credits`)).toEqual([`${tag} seller`]);
    expect(await search(buyer, `name=${tag}&federated=false`)).toEqual([`${tag} buyer`]);
    expect(await search(outsider, `name=${tag}`)).toEqual([]);

    // Readable from the trusted tenant, but only the seller can change it.
    const read = await api(`${offerings(buyer.id)}/${sold.id}`, { token: buyer.owner.token });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ tenantId: seller.id, agentName: "Reviewer" });
    const patch = await api(`${offerings(buyer.id)}/${sold.id}`, {
      method: "PATCH",
      token: buyer.owner.token,
      body: { name: "hijacked" },
    });
    expectError(patch, 404, "not_found");
    expectError(
      await api(`${offerings(buyer.id)}/${sold.id}`, { method: "DELETE", token: buyer.owner.token }),
      404,
      "not_found",
    );
    expectError(await api(`${offerings(outsider.id)}/${sold.id}`, { token: outsider.owner.token }), 404, "not_found");

    // Withdrawing the trust hides the seller again.
    await api(`/api/tenants/${seller.id}/federation/${buyer.id}`, { method: "DELETE", token: seller.owner.token });
    expect(await search(buyer, `name=${tag}`)).toEqual([`${tag} buyer`]);
  });
});

describe("offerings authorization", () => {
  it("needs offering create/manage to write and offering read to search", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t);
    const member = await addMember(t, "member");
    const noRole = await addMember(t, null);
    const denied = await api(offerings(t.id), { token: member.token, body: { agentId, name: "Sneaky" } });
    expectError(denied, 403, "forbidden");
    expect(await search(t, "")).toEqual([]);

    const o = await offer(t, agentId, { name: "Original" });
    expect(await search(t, "", member.token)).toEqual(["Original"]);
    const patch = await api(`${offerings(t.id)}/${o.id}`, {
      method: "PATCH",
      token: member.token,
      body: { name: "Changed" },
    });
    expectError(patch, 403, "forbidden");
    expectError(await api(`${offerings(t.id)}/${o.id}`, { method: "DELETE", token: member.token }), 403, "forbidden");
    expect(await search(t, "")).toEqual(["Original"]);
    expectError(await api(offerings(t.id), { token: noRole.token }), 403, "forbidden");
    expectError(await api(`${offerings(t.id)}/${o.id}`, { token: noRole.token }), 403, "forbidden");

    // A per-offering grant is honoured.
    const grant = await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { principalId: noRole.principalId, resource: `offering:${o.id}`, action: "read", effect: "allow" },
    });
    expect(grant.status).toBe(201);
    expect((await api(`${offerings(t.id)}/${o.id}`, { token: noRole.token })).status).toBe(200);
    expectError(await api(offerings(t.id), { token: noRole.token }), 403, "forbidden");
  });

  it("shows nothing to users of other tenants", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t);
    const o = await offer(t, agentId, { name: "Private" });
    const stranger = await signUp("Stranger");
    expectError(await api(offerings(t.id), { token: stranger.token }), 404, "not_found");
    expectError(await api(`${offerings(t.id)}/${o.id}`, { token: stranger.token }), 404, "not_found");
    const post = await api(offerings(t.id), { token: stranger.token, body: { agentId, name: "Mine now" } });
    expectError(post, 404, "not_found");
    const other = await createTenant(stranger);
    expectError(await api(`${offerings(other.id)}/${o.id}`, { token: stranger.token }), 404, "not_found");
    const patch = await api(`${offerings(other.id)}/${o.id}`, {
      method: "PATCH",
      token: stranger.token,
      body: { name: "x" },
    });
    expectError(patch, 404, "not_found");
    expect(await search(other, "")).toEqual([]);
    expect(await search(t, "")).toEqual(["Private"]);
  });
});
