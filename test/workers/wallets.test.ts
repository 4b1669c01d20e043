/** Wallets: CRUD, exact balances moved only by transactions, every transaction filter, and debits under contention. */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { creditWallet, debitWallet, isInsufficientFunds } from "../../src/catalog/wallets";
import { getDb } from "../../src/db/client";
import { agent, transaction, wallet } from "../../src/db/schema";
import { ApiError } from "../../src/errors";
import { newId } from "../../src/lib/ids";
import { addMember, api, createTenant, expectError, signUp, type TestTenant } from "./support/api";

const wallets = (tenantId: string) => `/api/tenants/${tenantId}/wallets`;

async function createWallet(t: TestTenant, body: Record<string, unknown> = {}) {
  const res = await api(wallets(t.id), {
    token: t.owner.token,
    body: { name: "Budget", backendType: "credits", currency: "USD", ...body },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; balance: string; isDefault: boolean };
}

function move(t: TestTenant, walletId: string, body: Record<string, unknown>, token = t.owner.token) {
  return api(`${wallets(t.id)}/${walletId}/transactions`, { token, body });
}

async function balanceOf(t: TestTenant, walletId: string): Promise<string> {
  const res = await api(`${wallets(t.id)}/${walletId}`, { token: t.owner.token });
  expect(res.status).toBe(200);
  return res.body.balance;
}

async function createAgent(t: TestTenant): Promise<string> {
  const id = newId("agent");
  await getDb(env)
    .insert(agent)
    .values({ id, tenantId: t.id, creatorPrincipalId: t.ownerPrincipalId, name: "Spender" });
  return id;
}

describe("wallets CRUD", () => {
  it("creates, lists, reads, edits and deletes a wallet", async () => {
    const t = await createTenant();
    const created = await api(wallets(t.id), {
      token: t.owner.token,
      body: { name: "Ops", backendType: "fiat", currency: "EUR" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^wlt_[0-9a-f]{32}$/),
      tenantId: t.id,
      name: "Ops",
      backendType: "fiat",
      currency: "EUR",
      balance: "0",
      // The tenant's first wallet becomes its default.
      isDefault: true,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const id = created.body.id;
    const second = await createWallet(t, {
      name: "Chain",
      backendType: "crypto",
      currency: "ETH",
      config: { chain: 1 },
    });
    const list = await api(wallets(t.id), { token: t.owner.token });
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([second.id, id]);
    expect(list.body.data[0].config).toEqual({ chain: 1 });
    const page = await api(`${wallets(t.id)}?limit=1`, { token: t.owner.token });
    expect(page.body.data).toHaveLength(1);
    const rest = await api(`${wallets(t.id)}?limit=1&cursor=${page.body.nextCursor}`, { token: t.owner.token });
    expect(rest.body).toMatchObject({ data: [{ id }], nextCursor: null });

    const patched = await api(`${wallets(t.id)}/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "Operations", config: { limit: "5" }, balance: "1000000" },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: "Operations", config: { limit: "5" }, balance: "0" });
    const cleared = await api(`${wallets(t.id)}/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { config: null },
    });
    expect(cleared.body).not.toHaveProperty("config");

    expect((await move(t, id, { direction: "inbound", amount: "3" })).status).toBe(201);
    expect((await api(`${wallets(t.id)}/${id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expect(expectError(await api(`${wallets(t.id)}/${id}`, { token: t.owner.token }), 404, "not_found").message).toBe(
      "Wallet not found",
    );
    expectError(await api(`${wallets(t.id)}/${id}/transactions`, { token: t.owner.token }), 404, "not_found");
    expect(await getDb(env).select().from(transaction).where(eq(transaction.walletId, id))).toEqual([]);
    expectError(await api(`${wallets(t.id)}/${id}`, { method: "DELETE", token: t.owner.token }), 404, "not_found");
    const patchGone = await api(`${wallets(t.id)}/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "x" },
    });
    expectError(patchGone, 404, "not_found");
  });

  it("keeps one default wallet per tenant: the first one, or the one made default", async () => {
    const t = await createTenant();
    const first = await createWallet(t, { name: "First", backendType: "credits", currency: "USD" });
    const second = await createWallet(t, { name: "Second", backendType: "credits", currency: "USD" });
    expect([first.isDefault, second.isDefault]).toEqual([true, false]);
    const third = await createWallet(t, { name: "Third", backendType: "credits", currency: "USD", isDefault: true });
    expect(third.isDefault).toBe(true);
    const isDefault = async (id: string) =>
      (await api(`${wallets(t.id)}/${id}`, { token: t.owner.token })).body.isDefault;
    expect([await isDefault(first.id), await isDefault(third.id)]).toEqual([false, true]);
    const made = await api(`${wallets(t.id)}/${second.id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { isDefault: true },
    });
    expect(made.body.isDefault).toBe(true);
    const defaults = (await api(wallets(t.id), { token: t.owner.token })).body.data.filter(
      (w: { isDefault: boolean }) => w.isDefault,
    );
    expect(defaults.map((w: { id: string }) => w.id)).toEqual([second.id]);
    // Another tenant's wallets are untouched by this tenant's default.
    const other = await createTenant(t.owner);
    expect((await createWallet(other, { name: "Own", backendType: "credits", currency: "USD" })).isDefault).toBe(true);
    const unset = await api(`${wallets(t.id)}/${second.id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { isDefault: false },
    });
    expect(unset.body.isDefault).toBe(false);
    expectError(
      await api(`${wallets(t.id)}/${second.id}`, {
        method: "PATCH",
        token: t.owner.token,
        body: { isDefault: "yes" },
      }),
      400,
      "validation_failed",
    );
  });

  it("validates wallet bodies and list queries", async () => {
    const t = await createTenant();
    const bad = [
      { name: "x", backendType: "gold", currency: "USD" },
      { name: "", backendType: "fiat", currency: "USD" },
      { name: "x", backendType: "fiat", currency: "US D" },
      { name: "x", backendType: "fiat" },
      { name: "x", backendType: "fiat", currency: "USD", config: [1] },
    ];
    for (const body of bad) {
      expectError(await api(wallets(t.id), { token: t.owner.token, body }), 400, "validation_failed");
    }
    expectError(await api(wallets(t.id), { token: t.owner.token, body: "[" }), 400, "invalid_json");
    expectError(await api(`${wallets(t.id)}?cursor=abc`, { token: t.owner.token }), 400, "invalid_cursor");
    expectError(await api(`${wallets(t.id)}?limit=abc`, { token: t.owner.token }), 400, "validation_failed");
    expect((await api(wallets(t.id), { token: t.owner.token })).body.data).toEqual([]);
  });
});

describe("wallet transactions", () => {
  it("credits and debits exactly, and never below zero", async () => {
    const t = await createTenant();
    const agentId = await createAgent(t);
    const w = await createWallet(t);
    const credit = await move(t, w.id, { direction: "inbound", amount: "10.10", senderId: "bank", requestId: "r-1" });
    expect(credit.status).toBe(201);
    expect(credit.body).toEqual({
      id: expect.stringMatching(/^txn_[0-9a-f]{32}$/),
      walletId: w.id,
      agentId: null,
      direction: "inbound",
      amount: "10.1",
      currency: "USD",
      recipientId: null,
      senderId: "bank",
      requestId: "r-1",
      status: "completed",
      metadata: null,
      createdAt: expect.any(String),
    });
    expect(await balanceOf(t, w.id)).toBe("10.1");
    // 0.1 + 0.2 is not 0.3 in floating point; here it is.
    await move(t, w.id, { direction: "outbound", amount: "0.1", agentId });
    await move(t, w.id, { direction: "outbound", amount: "0.2", agentId, recipientId: "openai" });
    expect(await balanceOf(t, w.id)).toBe("9.8");

    const tooMuch = await move(t, w.id, { direction: "outbound", amount: "9.800000000000000001" });
    const err = expectError(tooMuch, 409, "insufficient_funds");
    expect(err.details).toEqual({ balance: "9.8", amount: "9.800000000000000001", currency: "USD" });
    expect(await balanceOf(t, w.id)).toBe("9.8");
    const all = await move(t, w.id, { direction: "outbound", amount: "9.8" });
    expect(all.status).toBe(201);
    expect(await balanceOf(t, w.id)).toBe("0");
    const list = await api(`${wallets(t.id)}/${w.id}/transactions`, { token: t.owner.token });
    expect(list.body.data.map((x: { amount: string; direction: string }) => `${x.direction} ${x.amount}`)).toEqual([
      "outbound 9.8",
      "outbound 0.2",
      "outbound 0.1",
      "inbound 10.1",
    ]);
  });

  it("rejects amounts that are not positive decimal strings, and foreign agents", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const foreignAgent = await createAgent(other);
    const w = await createWallet(t);
    for (const amount of ["1e5", "-3", "abc", "0", "0.000", "", "1,5", "Infinity", 5]) {
      const res = await move(t, w.id, { direction: "inbound", amount });
      expect(expectError(res, 400, "validation_failed").details.issues[0].path).toBe("amount");
    }
    expectError(await move(t, w.id, { direction: "sideways", amount: "1" }), 400, "validation_failed");
    const foreign = await move(t, w.id, { direction: "inbound", amount: "1", agentId: foreignAgent });
    expect(expectError(foreign, 404, "not_found").message).toBe("Agent not found in this tenant");
    const unknownWallet = await move(t, "wlt_00000000000000000000000000000000", { direction: "inbound", amount: "1" });
    expect(expectError(unknownWallet, 404, "not_found").message).toBe("Wallet not found");
    expect(await balanceOf(t, w.id)).toBe("0");
    expect((await api(`${wallets(t.id)}/${w.id}/transactions`, { token: t.owner.token })).body.data).toEqual([]);
  });

  it("filters transactions by direction, status, agent, request and time, and pages through them", async () => {
    const t = await createTenant();
    const agentA = await createAgent(t);
    const agentB = await createAgent(t);
    const w = await createWallet(t);
    const db = getDb(env);
    const day = (d: number, h = 0) => new Date(Date.UTC(2026, 10, d, h));
    const rows = [
      { direction: "inbound", status: "completed", agentId: null, requestId: "dep-1", createdAt: day(1) },
      { direction: "outbound", status: "completed", agentId: agentA, requestId: "a-1", createdAt: day(2) },
      { direction: "outbound", status: "pending", agentId: agentA, requestId: "a-2", createdAt: day(3) },
      { direction: "outbound", status: "failed", agentId: agentB, requestId: "b-1", createdAt: day(3, 12) },
      { direction: "inbound", status: "completed", agentId: agentB, requestId: "b-2", createdAt: day(4) },
    ] as const;
    const ids: string[] = [];
    for (const r of rows) {
      const id = newId("transaction");
      ids.push(id);
      await db.insert(transaction).values({ id, walletId: w.id, amount: "1", currency: "USD", ...r });
    }
    const [dep1, a1, a2, b1, b2] = ids;
    const q = async (query: string) => {
      const res = await api(`${wallets(t.id)}/${w.id}/transactions?${query}`, { token: t.owner.token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.data.map((x: { id: string }) => x.id);
    };
    expect(await q("")).toEqual([b2, b1, a2, a1, dep1]);
    expect(await q("direction=inbound")).toEqual([b2, dep1]);
    expect(await q("status=completed")).toEqual([b2, a1, dep1]);
    expect(await q("status=pending")).toEqual([a2]);
    expect(await q("status=failed")).toEqual([b1]);
    expect(await q(`agentId=${agentA}`)).toEqual([a2, a1]);
    expect(await q(`agentId=${agentB}&direction=outbound`)).toEqual([b1]);
    expect(await q("requestId=a-2")).toEqual([a2]);
    expect(await q(`startTime=${day(2).toISOString()}`)).toEqual([b2, b1, a2, a1]);
    expect(await q(`endTime=${day(3).toISOString()}`)).toEqual([a1, dep1]);
    expect(await q(`startTime=${day(3).toISOString()}&endTime=${day(4).toISOString()}`)).toEqual([b1, a2]);
    expect(await q(`startTime=2026-11-03T13:00:00%2B01:00&endTime=${day(4).toISOString()}`)).toEqual([b1]);
    expect(await q(`startTime=${day(3).toISOString()}&endTime=${day(3).toISOString()}`)).toEqual([]);
    expect(await q(`startTime=${day(2).toISOString()}&status=completed&direction=outbound&agentId=${agentA}`)).toEqual([
      a1,
    ]);

    const first = await api(`${wallets(t.id)}/${w.id}/transactions?limit=2&startTime=${day(2).toISOString()}`, {
      token: t.owner.token,
    });
    expect(first.body.data.map((x: { id: string }) => x.id)).toEqual([b2, b1]);
    const second = await api(
      `${wallets(t.id)}/${w.id}/transactions?limit=2&startTime=${day(2).toISOString()}&cursor=${first.body.nextCursor}`,
      { token: t.owner.token },
    );
    expect(second.body).toMatchObject({ data: [{ id: a2 }, { id: a1 }], nextCursor: null });
  });

  it("rejects bad transaction filters", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    const path = `${wallets(t.id)}/${w.id}/transactions`;
    for (const query of [
      "startTime=yesterday",
      "endTime=2026-13-01T00:00:00Z",
      "startTime=2026-11-25",
      "startTime=2026-11-26T00:00:00Z&endTime=2026-11-25T00:00:00Z",
      "status=lost",
      "direction=up",
      "limit=1000",
    ]) {
      expectError(await api(`${path}?${query}`, { token: t.owner.token }), 400, "validation_failed");
    }
    expectError(await api(`${path}?cursor=eyJ0IjoieCJ9`, { token: t.owner.token }), 400, "invalid_cursor");
  });
});

describe("idempotent transactions", () => {
  it("a repeated requestId returns the recorded transaction with 200 and moves nothing", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    expect((await move(t, w.id, { direction: "inbound", amount: "10" })).status).toBe(201);
    const first = await move(t, w.id, { direction: "outbound", amount: "2.50", requestId: "pay-1" });
    expect(first.status).toBe(201);
    const again = await move(t, w.id, { direction: "outbound", amount: "2.5", requestId: "pay-1" });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(await balanceOf(t, w.id)).toBe("7.5");

    // The same id for a different change is refused, and nothing moves.
    const other = await move(t, w.id, { direction: "outbound", amount: "3", requestId: "pay-1" });
    expect(expectError(other, 409, "idempotency_conflict").details).toEqual({ transactionId: first.body.id });
    const flipped = await move(t, w.id, { direction: "inbound", amount: "2.5", requestId: "pay-1" });
    expectError(flipped, 409, "idempotency_conflict");
    expect(await balanceOf(t, w.id)).toBe("7.5");

    // Request ids are per wallet.
    const second = await createWallet(t);
    expect((await move(t, second.id, { direction: "inbound", amount: "1", requestId: "pay-1" })).status).toBe(201);
  });

  it("concurrent retries of one requestId record one transaction and move the balance once", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    expect((await move(t, w.id, { direction: "inbound", amount: "10" })).status).toBe(201);
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => move(t, w.id, { direction: "outbound", amount: "1", requestId: "retry-me" })),
    );
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    expect(await balanceOf(t, w.id)).toBe("9");
    const db = getDb(env);
    const rows = await db.select().from(transaction).where(eq(transaction.walletId, w.id));
    expect(rows.filter((x) => x.requestId === "retry-me")).toHaveLength(1);
  });
});

describe("debits under contention", () => {
  it("lets concurrent debits through only while the balance lasts (domain functions)", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    const db = getDb(env);
    await creditWallet(db, w.id, "10");
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => debitWallet(db, w.id, "0.7", { requestId: `req-${i}` })),
    );
    const succeeded = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    for (const f of failed) expect(isInsufficientFunds(f.reason), String(f.reason)).toBe(true);
    // 14 × 0.7 = 9.8 fits in 10; a 15th would not.
    expect(succeeded).toHaveLength(14);
    const [row] = await db.select().from(wallet).where(eq(wallet.id, w.id));
    expect(row?.balance).toBe("0.2");
    const txns = await db.select().from(transaction).where(eq(transaction.walletId, w.id));
    const outbound = txns.filter((x) => x.direction === "outbound");
    expect(outbound).toHaveLength(14);
    expect(outbound.every((x) => x.amount === "0.7" && x.status === "completed")).toBe(true);
    // Each successful debit has its own row, and only successful ones do.
    const okRequests = succeeded.map(
      (r) => (r as PromiseFulfilledResult<{ transaction: { requestId: string } }>).value,
    );
    expect(outbound.map((x) => x.requestId).sort()).toEqual(okRequests.map((v) => v.transaction.requestId).sort());
  });

  it("keeps the balance exact with concurrent credits and debits over HTTP", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    expect((await move(t, w.id, { direction: "inbound", amount: "5" })).status).toBe(201);
    const responses = await Promise.all([
      ...Array.from({ length: 12 }, () => move(t, w.id, { direction: "outbound", amount: "1" })),
      ...Array.from({ length: 3 }, () => move(t, w.id, { direction: "inbound", amount: "0.5" })),
    ]);
    const debits = responses.slice(0, 12);
    const okDebits = debits.filter((r) => r.status === 201).length;
    for (const r of debits.filter((r) => r.status !== 201)) expectError(r, 409, "insufficient_funds");
    for (const r of responses.slice(12)) expect(r.status).toBe(201);
    // 5 + 1.5 allows at most 6 debits of 1, and at least the 5 the initial balance covers.
    expect(okDebits).toBeGreaterThanOrEqual(5);
    expect(okDebits).toBeLessThanOrEqual(6);
    const balance = await balanceOf(t, w.id);
    expect(balance).toBe(String(6.5 - okDebits));
    const list = await api(`${wallets(t.id)}/${w.id}/transactions?direction=outbound`, { token: t.owner.token });
    expect(list.body.data).toHaveLength(okDebits);
  });

  it("refuses unknown wallets, bad amounts and another currency in the domain functions", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    const db = getDb(env);
    await expect(debitWallet(db, "wlt_00000000000000000000000000000000", "1")).rejects.toMatchObject({
      status: 404,
      code: "not_found",
    });
    for (const amount of ["1e5", "-3", "abc", "0"]) {
      await expect(creditWallet(db, w.id, amount)).rejects.toMatchObject({ status: 400, code: "invalid_amount" });
    }
    await expect(creditWallet(db, w.id, "1", { currency: "EUR" })).rejects.toMatchObject({
      status: 400,
      code: "currency_mismatch",
    });
    const change = await creditWallet(db, w.id, "1.50", { currency: "USD" });
    expect(change.wallet.balance).toBe("1.5");
    expect(change.transaction).toMatchObject({ amount: "1.5", direction: "inbound", currency: "USD" });
    const refused = await debitWallet(db, w.id, "2").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(isInsufficientFunds(refused)).toBe(true);
    // A statement of the batch failing (here the agent foreign key) leaves neither the row nor the balance.
    await expect(debitWallet(db, w.id, "1", { agentId: "agt_00000000000000000000000000000000" })).rejects.toThrow();
    const [row] = await db.select().from(wallet).where(eq(wallet.id, w.id));
    expect(row?.balance).toBe("1.5");
    expect(await db.select().from(transaction).where(eq(transaction.walletId, w.id))).toHaveLength(1);
  });
});

describe("wallets authorization", () => {
  it("needs wallet create/manage to write and wallet read to look", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    await move(t, w.id, { direction: "inbound", amount: "4" });
    const member = await addMember(t, "member");
    const noRole = await addMember(t, null);

    const create = await api(wallets(t.id), {
      token: member.token,
      body: { name: "Mine", backendType: "credits", currency: "USD" },
    });
    expectError(create, 403, "forbidden");
    expect((await api(wallets(t.id), { token: member.token })).body.data.map((x: { id: string }) => x.id)).toEqual([
      w.id,
    ]);
    expectError(await move(t, w.id, { direction: "inbound", amount: "100" }, member.token), 403, "forbidden");
    expectError(await move(t, w.id, { direction: "outbound", amount: "4" }, member.token), 403, "forbidden");
    const patch = await api(`${wallets(t.id)}/${w.id}`, { method: "PATCH", token: member.token, body: { name: "x" } });
    expectError(patch, 403, "forbidden");
    expectError(await api(`${wallets(t.id)}/${w.id}`, { method: "DELETE", token: member.token }), 403, "forbidden");
    const after = await api(`${wallets(t.id)}/${w.id}`, { token: member.token });
    expect(after.body).toMatchObject({ name: "Budget", balance: "4" });
    expect((await api(`${wallets(t.id)}/${w.id}/transactions`, { token: member.token })).body.data).toHaveLength(1);

    expectError(await api(wallets(t.id), { token: noRole.token }), 403, "forbidden");
    expectError(await api(`${wallets(t.id)}/${w.id}`, { token: noRole.token }), 403, "forbidden");
    expectError(await api(`${wallets(t.id)}/${w.id}/transactions`, { token: noRole.token }), 403, "forbidden");
    // A grant on one wallet opens that wallet only.
    const grant = await api(`/api/tenants/${t.id}/grants`, {
      token: t.owner.token,
      body: { principalId: noRole.principalId, resource: `wallet:${w.id}`, action: "manage", effect: "allow" },
    });
    expect(grant.status).toBe(201);
    expect((await move(t, w.id, { direction: "outbound", amount: "1" }, noRole.token)).status).toBe(201);
    expect(await balanceOf(t, w.id)).toBe("3");
  });

  it("shows nothing to users of other tenants", async () => {
    const t = await createTenant();
    const w = await createWallet(t);
    await move(t, w.id, { direction: "inbound", amount: "4" });
    const stranger = await signUp("Stranger");
    expectError(await api(wallets(t.id), { token: stranger.token }), 404, "not_found");
    expectError(await api(`${wallets(t.id)}/${w.id}`, { token: stranger.token }), 404, "not_found");
    expectError(await api(`${wallets(t.id)}/${w.id}/transactions`, { token: stranger.token }), 404, "not_found");
    expectError(await move(t, w.id, { direction: "outbound", amount: "4" }, stranger.token), 404, "not_found");
    const own = await createTenant(stranger);
    const viaOwn = `${wallets(own.id)}/${w.id}`;
    expectError(await api(viaOwn, { token: stranger.token }), 404, "not_found");
    expectError(await api(`${viaOwn}/transactions`, { token: stranger.token }), 404, "not_found");
    expectError(await move(own, w.id, { direction: "outbound", amount: "4" }), 404, "not_found");
    expectError(await api(viaOwn, { method: "PATCH", token: stranger.token, body: { name: "x" } }), 404, "not_found");
    expectError(await api(viaOwn, { method: "DELETE", token: stranger.token }), 404, "not_found");
    expect((await api(wallets(own.id), { token: stranger.token })).body.data).toEqual([]);
    expect(await balanceOf(t, w.id)).toBe("4");
  });
});
