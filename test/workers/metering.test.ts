/**
 * Metering: a launch charges a wallet (named, or the tenant's default), each model call's usage is priced
 * from the catalog and debited exactly once, and a wallet that cannot pay stops the agent.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentInstance, agentSession, inferenceTurn, transaction } from "../../src/db/schema";
import { addMember, api, createTenant, expectError } from "./support/api";
import {
  createAgent,
  db,
  instancesOf,
  launch,
  ok,
  type Runtime,
  SLOW,
  setUpRuntime,
  subscribe,
  tenantBase,
  until,
} from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

/** $3 per million input tokens, $15 per million output tokens. */
const PRICED = { input: "3", output: "15", currency: "USD" };

async function priceEcho(r: Runtime, pricing: Record<string, string> = PRICED) {
  await ok(
    `${tenantBase(r.t.id)}/providers/${r.providerId}`,
    r.token,
    { metadata: { baseURL: "http://127.0.0.1/echo", models: [{ id: "echo", pricing }] } },
    "PATCH",
  );
}

async function credit(r: Runtime, walletId: string, amount: string) {
  await ok(`${tenantBase(r.t.id)}/wallets/${walletId}/transactions`, r.token, { direction: "inbound", amount });
}

const balanceOf = async (r: Runtime, walletId: string) =>
  (await ok(`${tenantBase(r.t.id)}/wallets/${walletId}`, r.token)).balance as string;

/** One model call, as a sidecar reports it: interim usage, then the final usage with the reply. */
function modelCall(channel: TestInstanceChannel, usage: { input: number; output: number }, seq?: number) {
  channel.event("inference.start", { model: "echo" });
  channel.event("inference.usage", { usage: { input: usage.input, output: 1 } });
  const done = {
    type: "agent.event",
    agentAddress: channel.agentAddress,
    sessionId: channel.sessionId,
    event: {
      type: "inference.done",
      seq: seq ?? 10_000 + Math.floor(Math.random() * 1e6),
      data: {
        turn: { role: "assistant", content: [{ type: "text", text: "ok" }], model: "echo" },
        usage,
        source: "echo:echo",
      },
    },
  };
  channel.send(done);
  return done;
}

describe("launching charges a wallet", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("409 wallet_required before anything is written when the tenant has no default wallet", async () => {
    await ok(`${tenantBase(r.t.id)}/wallets/${r.walletId}`, r.token, { isDefault: false }, "PATCH");
    try {
      const agent = await createAgent(r);
      const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId: agent.id } });
      expect(expectError(res, 409, "wallet_required").message).toMatch(/walletId/);
      expect(await db.select().from(agentInstance).where(eq(agentInstance.agentId, agent.id))).toEqual([]);
      expect(await db.select().from(agentSession).where(eq(agentSession.agentId, agent.id))).toEqual([]);
      // Naming the wallet works without a default.
      const named = await api(instancesOf(r.t.id), {
        token: r.token,
        body: { agentId: agent.id, walletId: r.walletId },
      });
      expect(named.status, JSON.stringify(named.body)).toBe(201);
      await sidecar.instance(named.body.id);
      const [row] = await db.select().from(agentInstance).where(eq(agentInstance.id, named.body.id));
      expect(row?.walletId).toBe(r.walletId);
    } finally {
      await ok(`${tenantBase(r.t.id)}/wallets/${r.walletId}`, r.token, { isDefault: true }, "PATCH");
    }
  });

  it("404 for another tenant's wallet, 403 without write on the wallet, 409 for a model priced in another currency", async () => {
    const other = await createTenant();
    const theirs = await api(`${tenantBase(other.id)}/wallets`, {
      token: other.owner.token,
      body: { name: "Theirs", backendType: "credits", currency: "USD" },
    });
    expectError(
      await api(instancesOf(r.t.id), { token: r.token, body: { agentId: r.agentId, walletId: theirs.body.id } }),
      404,
      "not_found",
    );

    const launcher = await addMember(r.t, "member");
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId: launcher.principalId,
      resource: "instance:*",
      action: "create",
      effect: "allow",
    });
    const denied = await api(instancesOf(r.t.id), { token: launcher.token, body: { agentId: r.agentId } });
    expect(expectError(denied, 403, "forbidden").message).toContain(`wallet:${r.walletId}`);

    const euros = await ok(`${tenantBase(r.t.id)}/wallets`, r.token, {
      name: "Euros",
      backendType: "credits",
      currency: "EUR",
    });
    await priceEcho(r);
    try {
      const mismatch = await api(instancesOf(r.t.id), {
        token: r.token,
        body: { agentId: r.agentId, walletId: euros.id },
      });
      expect(expectError(mismatch, 409, "currency_mismatch").message).toMatch(/USD.*EUR/);
    } finally {
      await priceEcho(r, {});
    }
  });
});

describe("metering model calls", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    await priceEcho(r);
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("debits exactly price × tokens once per call, the ledger and the turn agree, a replayed frame charges nothing", async () => {
    const wallet = await ok(`${tenantBase(r.t.id)}/wallets`, r.token, {
      name: "Exact",
      backendType: "credits",
      currency: "USD",
    });
    await credit(r, wallet.id, "1");
    const { instance, channel } = await launch(r, sidecar, r.agentId, wallet.id);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const stream = await subscribe(path, r.token);

    // 1,000 input tokens at $3/M and 200 output tokens at $15/M: 0.003 + 0.003.
    const done = modelCall(channel, { input: 1000, output: 200 });
    channel.event("connector.reply", { content: "ok" });
    await channel.settled();
    await until("the debit", async () => (await balanceOf(r, wallet.id)) === "0.994");
    expect(await stream.until('"usage.charged"')).toMatch(/"amount":"0.006"/);

    const turns = await ok(`${path}/turns`, r.token);
    expect(turns.data[0]).toMatchObject({ inputTokens: 1000, outputTokens: 200, cost: "0.006", status: "completed" });
    const ledger = await ok(`${tenantBase(r.t.id)}/wallets/${wallet.id}/transactions?direction=outbound`, r.token);
    expect(ledger.data).toHaveLength(1);
    expect(ledger.data[0]).toMatchObject({
      amount: "0.006",
      agentId: r.agentId,
      status: "completed",
      metadata: {
        kind: "model_call",
        instanceId: instance.id,
        turnId: turns.data[0].id,
        usage: { input: 1000, output: 200, cacheRead: 0, cacheWrite: 0, thinking: 0 },
      },
    });

    // The same frame again (a retried send): nothing more is charged or counted.
    channel.send(done);
    await channel.settled();
    expect(await balanceOf(r, wallet.id)).toBe("0.994");
    expect(
      (await ok(`${tenantBase(r.t.id)}/wallets/${wallet.id}/transactions?direction=outbound`, r.token)).data,
    ).toHaveLength(1);
    expect((await ok(`${path}/turns`, r.token)).data[0]).toMatchObject({ inputTokens: 1000, outputTokens: 200 });
    await stream.close();
  });

  it("a wallet that cannot pay aborts the instance with wallet_exhaustion mid-turn, and the stream says why", async () => {
    const wallet = await ok(`${tenantBase(r.t.id)}/wallets`, r.token, {
      name: "Thin",
      backendType: "credits",
      currency: "USD",
    });
    await credit(r, wallet.id, "0.005");
    const { instance, channel } = await launch(r, sidecar, r.agentId, wallet.id);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const stream = await subscribe(path, r.token);
    const from = channel.log.frames.length;
    modelCall(channel, { input: 1000, output: 200 }); // costs 0.006
    const abort = await channel.log.next("session.abort", from);
    expect(abort.reason).toBe("wallet_exhaustion");
    const text = await stream.until('"data":{"status":"idle"}');
    expect(text).toContain('"type":"wallet.exhausted"');
    expect(text).toMatch(/"required":"0.006","balance":"0.005","currency":"USD"/);
    expect(text).toMatch(
      /"type":"turn.failed","seq":\d+,"data":\{"turnId":"itn_[0-9a-f]+","reason":"wallet_exhaustion"\}/,
    );
    // Nothing was taken: a balance never goes below zero.
    expect(await balanceOf(r, wallet.id)).toBe("0.005");
    const [turn] = (await ok(`${path}/turns`, r.token)).data;
    expect(turn.status).toBe("failed");
    expect(turn.parts.at(-1)).toMatchObject({ type: "error", metadata: { category: "wallet_exhaustion" } });
    await stream.close();
  });

  it("two instances on one wallet never take it below zero, and the ledger sums to the balance", async () => {
    const wallet = await ok(`${tenantBase(r.t.id)}/wallets`, r.token, {
      name: "Shared",
      backendType: "credits",
      currency: "USD",
    });
    await credit(r, wallet.id, "0.03"); // five calls of 0.006
    const a = await launch(r, sidecar, r.agentId, wallet.id);
    const b = await launch(r, sidecar, r.agentId, wallet.id);
    for (let i = 0; i < 4; i++) {
      modelCall(a.channel, { input: 1000, output: 200 });
      modelCall(b.channel, { input: 1000, output: 200 });
    }
    await Promise.all([a.channel.settled(), b.channel.settled()]);
    await until("both instances settled", async () => {
      const rows = await db.select().from(transaction).where(eq(transaction.walletId, wallet.id));
      return rows.filter((t) => t.direction === "outbound").length === 5;
    });
    expect(await balanceOf(r, wallet.id)).toBe("0");
    const rows = await db.select().from(transaction).where(eq(transaction.walletId, wallet.id));
    const outbound = rows.filter((t) => t.direction === "outbound");
    expect(outbound.map((t) => t.amount)).toEqual(Array(5).fill("0.006"));
    const charged = await db.select().from(inferenceTurn).where(eq(inferenceTurn.cost, "0.006"));
    expect(charged.filter((t) => t.instanceId === a.instance.id || t.instanceId === b.instance.id)).toHaveLength(5);
    // The calls that found the wallet empty stopped their instances.
    const aborts = [...a.channel.log.ofType("session.abort"), ...b.channel.log.ofType("session.abort")];
    expect(aborts.length).toBeGreaterThan(0);
    expect(new Set(aborts.map((f) => f.reason))).toEqual(new Set(["wallet_exhaustion"]));
  });
});
