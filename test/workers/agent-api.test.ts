/**
 * An agent calls the REST API with its own token (`ahi_…`, given to its sidecar at deploy): as its
 * instance's principal, in its own tenant only, while the instance runs. A request its grants answer with
 * `ask` waits for a person: 202 with the approval, and the same request goes through once approved.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { approval, grant, transaction } from "../../src/db/schema";
import { addMember, api, createTenant, expectError } from "./support/api";
import { instancesOf, launch, ok, type Runtime, SLOW, setUpRuntime, subscribe, tenantBase } from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

const db = getDb(env);

describe("an agent's own API token", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let instance: { id: string };
  let channel: TestInstanceChannel;
  let agentToken: string;
  let principalId: string;
  const wallets = () => `${tenantBase(r.t.id)}/wallets`;
  const pay = (amount: string, token = agentToken) =>
    api(`${wallets()}/${r.walletId}/transactions`, { token, body: { direction: "outbound", amount } });
  const approvals = () => `${tenantBase(r.t.id)}/approvals`;
  const pendingOfAgent = async () =>
    (await db.select().from(approval).where(eq(approval.principalId, principalId)))
      .filter((a) => a.status === "pending")
      .map((a) => a.id)
      .sort();
  const transactions = () => db.select().from(transaction).where(eq(transaction.walletId, r.walletId));

  beforeAll(async () => {
    r = await setUpRuntime();
    await ok(`${wallets()}/${r.walletId}/transactions`, r.token, { direction: "inbound", amount: "100" });
    sidecar = await TestSidecar.connect(r.secret);
    ({ instance, channel } = await launch(r, sidecar));
    const deploy = await channel.log.next("agent.deploy");
    agentToken = deploy.config.apiToken;
    principalId = deploy.config.principalId;
    // The agent may read wallets, must ask before moving money.
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "wallet:*",
      action: "read",
      effect: "allow",
    });
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: `wallet:${r.walletId}`,
      action: "manage",
      effect: "ask",
    });
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("is given once at deploy and acts as the instance's principal in its tenant", async () => {
    expect(agentToken).toMatch(/^ahi_[A-Za-z0-9_-]{43}$/);
    const listed = await api(wallets(), { token: agentToken });
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((w: { id: string }) => w.id)).toContain(r.walletId);
    // What its grants do not allow is a 403, as for anyone.
    expectError(await api(`${tenantBase(r.t.id)}/credentials`, { token: agentToken }), 403, "forbidden");
    // An instance's view of itself is not an inbox of the people's approvals.
    expectError(await api(approvals(), { token: agentToken }), 403, "forbidden");
  });

  it("sees no other tenant, and an unknown or malformed token is 401", async () => {
    const other = await createTenant();
    expectError(await api(`${tenantBase(other.id)}/wallets`, { token: agentToken }), 404, "not_found");
    expectError(await api(`${tenantBase(r.t.id)}/wallets`, { token: `ahi_${"A".repeat(43)}` }), 401, "unauthorized");
    expectError(await api(`${tenantBase(r.t.id)}/wallets`, { token: "ahi_" }), 401, "unauthorized");
    expectError(await api(`${tenantBase(r.t.id)}/wallets`, { token: `ahi_${"x".repeat(400)}` }), 401, "unauthorized");
    // It is not a person's session: the personal routes do not know it.
    expectError(await api("/api/me/approvals", { token: agentToken }), 401, "unauthorized");
  });

  it("ask: 202 with one pending approval (asking again returns it), shown on the stream", async () => {
    const stream = await subscribe(`${instancesOf(r.t.id)}/${instance.id}`, r.token);
    const first = await pay("20");
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toMatchObject({
      approval: {
        id: expect.stringMatching(/^apr_/),
        status: "pending",
        principalId,
        instanceId: instance.id,
        resource: `wallet:${r.walletId}`,
        action: "manage",
        context: {
          method: "POST",
          path: `${wallets()}/${r.walletId}/transactions`,
          body: { direction: "outbound", amount: "20" },
        },
      },
      retry: expect.any(String),
    });
    expect(await stream.until('"approval.requested"')).toContain(first.body.approval.id);
    await stream.close();

    const again = await pay("20");
    expect(again.status).toBe(202);
    expect(again.body.approval.id).toBe(first.body.approval.id);
    // A different request is a different approval.
    const other = await pay("21");
    expect(other.status).toBe(202);
    expect(other.body.approval.id).not.toBe(first.body.approval.id);
    expect(await transactions()).toHaveLength(1); // only the owner's top-up
  });

  it("approved once: the same request goes through once, and the next one asks again", async () => {
    const asked = await pay("5");
    expect(asked.status).toBe(202);
    await ok(`${approvals()}/${asked.body.approval.id}/approve`, r.token, { scope: "once" });
    const done = await pay("5");
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(done.body).toMatchObject({ direction: "outbound", amount: "5", status: "completed" });
    const next = await pay("5");
    expect(next.status).toBe(202);
    expect(next.body.approval.id).not.toBe(asked.body.approval.id);
    expect((await ok(`${wallets()}/${r.walletId}`, r.token)).balance).toBe("95");
  });

  it("rejected: the retry is 403 approval_rejected with the approver's message; nothing moves", async () => {
    const asked = await pay("50");
    await ok(`${approvals()}/${asked.body.approval.id}/reject`, r.token, { message: "Too much, ask finance" });
    const refused = expectError(await pay("50"), 403, "approval_rejected");
    expect(refused.message).toContain("Too much, ask finance");
    expect(refused.message).toContain(asked.body.approval.id);
    expect((await ok(`${wallets()}/${r.walletId}`, r.token)).balance).toBe("95");
    // The rejection answered that retry; asking once more starts a new approval.
    expect((await pay("50")).status).toBe(202);
  });

  it("a rejection nobody retried stops answering once the approval's time is past", async () => {
    const asked = await pay("60");
    await ok(`${approvals()}/${asked.body.approval.id}/reject`, r.token, { message: "No" });
    await db
      .update(approval)
      .set({ expiresAt: new Date(Date.now() - 1_000) })
      .where(eq(approval.id, asked.body.approval.id));
    const again = await pay("60");
    expect(again.status).toBe(202);
    expect(again.body.approval.id).not.toBe(asked.body.approval.id);
    expect((await ok(`${approvals()}/${asked.body.approval.id}`, r.token)).status).toBe("rejected");
  });

  it("a bad body still asks first, then fails validation once approved, without moving money", async () => {
    const asked = await pay("-3");
    expect(asked.status).toBe(202);
    await ok(`${approvals()}/${asked.body.approval.id}/approve`, r.token, { scope: "once" });
    expectError(await pay("-3"), 400, "validation_failed");
    expect((await ok(`${wallets()}/${r.walletId}`, r.token)).balance).toBe("95");
  });

  it("a person with an ask grant is refused (403), not made to wait", async () => {
    const member = await addMember(r.t, null);
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId: member.principalId,
      resource: `wallet:${r.walletId}`,
      action: "manage",
      effect: "ask",
    });
    expectError(await pay("1", member.token), 403, "forbidden");
    expect(await db.select().from(approval).where(eq(approval.principalId, member.principalId))).toEqual([]);
  });

  it("always: the agent's grant becomes allow and it is not asked again", async () => {
    const asked = await pay("1");
    await ok(`${approvals()}/${asked.body.approval.id}/approve`, r.token, { scope: "always" });
    const pendingBefore = await pendingOfAgent();
    expect((await pay("1")).status).toBe(201);
    expect((await pay("2")).status).toBe(201);
    expect(await pendingOfAgent()).toEqual(pendingBefore);
    const grants = await db.select().from(grant).where(eq(grant.principalId, principalId));
    expect(grants.filter((g) => g.resource === `wallet:${r.walletId}` && g.action === "manage")).toEqual([
      expect.objectContaining({ effect: "allow", origin: "approval" }),
    ]);
  });

  it("stops working when the instance stops", async () => {
    expect((await api(`${instancesOf(r.t.id)}/${instance.id}`, { method: "DELETE", token: r.token })).status).toBe(204);
    expectError(await api(wallets(), { token: agentToken }), 401, "unauthorized");
  });
});
