/**
 * Approvals: a gated tool call of an agent meets an `ask` grant, the hub creates an approval, shows it on
 * the instance's stream and to whoever may decide, and tells the sidecar the decision (once, always, or
 * a rejection with its message); approvals expire; spend conditions use the wallet's real spend.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { addMember, api, createTenant, expectError } from "./support/api";
import { instancesOf, launch, ok, type Runtime, SLOW, setUpRuntime, subscribe, tenantBase } from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

/** Sends `gate.request` and returns the hub's `gate.decision` for it. */
async function gate(
  channel: TestInstanceChannel,
  resource: string,
  action: string,
  context: Record<string, unknown> = {},
) {
  const requestId = crypto.randomUUID();
  const from = channel.log.frames.length;
  channel.send({ type: "gate.request", requestId, agentAddress: channel.agentAddress, resource, action, context });
  const decision = await channel.log.waitFor(
    (f) => f.type === "gate.decision" && f.requestId === requestId,
    "a gate.decision",
    from,
  );
  return { requestId, decision };
}

function decisionFor(channel: TestInstanceChannel, approvalId: string, from = 0) {
  return channel.log.waitFor(
    (f) => f.type === "approval.decision" && f.approvalId === approvalId,
    `approval.decision for ${approvalId}`,
    from,
  );
}

describe("approvals of gated tool calls", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let instance: { id: string; address: string };
  let channel: TestInstanceChannel;
  let principalId: string;
  const approvals = () => `${tenantBase(r.t.id)}/approvals`;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
    ({ instance, channel } = await launch(r, sidecar));
    principalId = (await channel.log.next("agent.deploy")).config.principalId;
    // The agent may read files, must ask before sending mail, may never delete.
    for (const [resource, action, effect] of [
      ["tool:read_file", "invoke", "allow"],
      ["tool:send_mail", "invoke", "ask"],
      ["tool:delete", "invoke", "deny"],
    ]) {
      await ok(`${tenantBase(r.t.id)}/grants`, r.token, { principalId, resource, action, effect });
    }
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("answers allow and deny at once; ask creates an approval shown on the stream and to deciders", async () => {
    const stream = await subscribe(`${instancesOf(r.t.id)}/${instance.id}`, r.token);
    expect((await gate(channel, "tool:read_file", "invoke")).decision.decision).toBe("allow");
    expect((await gate(channel, "tool:delete", "invoke")).decision).toMatchObject({
      decision: "deny",
      reason: "denied by a grant",
    });
    expect((await gate(channel, "tool:unknown", "invoke")).decision).toMatchObject({
      decision: "deny",
      reason: "no grant allows it",
    });

    const asked = await gate(channel, "tool:send_mail", "invoke", { to: "ops@example.com", subject: "report" });
    expect(asked.decision).toMatchObject({ decision: "pending", approvalId: expect.stringMatching(/^apr_/) });
    expect(Date.parse(asked.decision.expiresAt) - Date.now()).toBeGreaterThan(59 * 60 * 1000);
    const text = await stream.until('"approval.requested"');
    expect(text).toContain(asked.decision.approvalId);

    const listed = await ok(`${approvals()}?status=pending&instanceId=${instance.id}`, r.token);
    expect(listed.data.map((a: { id: string }) => a.id)).toContain(asked.decision.approvalId);
    const one = await ok(`${approvals()}/${asked.decision.approvalId}`, r.token);
    expect(one).toMatchObject({
      status: "pending",
      principalId,
      agentId: r.agentId,
      instanceId: instance.id,
      resource: "tool:send_mail",
      action: "invoke",
      context: { to: "ops@example.com", subject: "report" },
      scope: null,
      resolvedAt: null,
    });
    const mine = await ok("/api/me/approvals", r.token);
    expect(mine.data.map((a: { id: string }) => a.id)).toContain(asked.decision.approvalId);
    // A member cannot decide: it is not in their inbox.
    const member = await addMember(r.t, "member");
    expect((await ok("/api/me/approvals", member.token)).data).toEqual([]);
    await stream.close();
  });

  it("once: the call goes ahead and the next one asks again; the decision reaches the sidecar", async () => {
    const asked = await gate(channel, "tool:send_mail", "invoke", { to: "a@example.com" });
    const from = channel.log.frames.length;
    const approved = await ok(`${approvals()}/${asked.decision.approvalId}/approve`, r.token, { scope: "once" });
    expect(approved).toMatchObject({ status: "approved", scope: "once", resolvedAt: expect.any(String) });
    expect(await decisionFor(channel, asked.decision.approvalId, from)).toMatchObject({
      requestId: asked.requestId,
      decision: "approved",
      scope: "once",
      message: null,
    });
    expect((await gate(channel, "tool:send_mail", "invoke")).decision.decision).toBe("pending");
  });

  it("always: an allow grant for the agent reaches it as grants.update, and it is not asked again", async () => {
    const asked = await gate(channel, "tool:send_mail", "invoke");
    const from = channel.log.frames.length;
    await ok(`${approvals()}/${asked.decision.approvalId}/approve`, r.token, { scope: "always" });
    const update = await channel.log.next("grants.update", from);
    expect(update.grants).toContainEqual(
      expect.objectContaining({ resource: "tool:send_mail", action: "invoke", effect: "allow" }),
    );
    expect(await decisionFor(channel, asked.decision.approvalId, from)).toMatchObject({
      decision: "approved",
      scope: "always",
    });
    expect((await gate(channel, "tool:send_mail", "invoke")).decision.decision).toBe("allow");
    const grants = await ok(`${tenantBase(r.t.id)}/grants?principalId=${principalId}`, r.token);
    expect(grants.data).toContainEqual(
      expect.objectContaining({ resource: "tool:send_mail", action: "invoke", effect: "allow", origin: "approval" }),
    );
  });

  it("a rejection reaches the agent with its message; a decision is final", async () => {
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "tool:pay",
      action: "invoke",
      effect: "ask",
    });
    const asked = await gate(channel, "tool:pay", "invoke", { amount: "120" });
    const from = channel.log.frames.length;
    const rejected = await ok(`${approvals()}/${asked.decision.approvalId}/reject`, r.token, {
      message: "Too much, ask finance",
    });
    expect(rejected).toMatchObject({ status: "rejected", message: "Too much, ask finance", scope: null });
    expect(await decisionFor(channel, asked.decision.approvalId, from)).toMatchObject({
      decision: "rejected",
      message: "Too much, ask finance",
    });
    const again = await api(`${approvals()}/${asked.decision.approvalId}/approve`, {
      token: r.token,
      body: { scope: "once" },
    });
    expect(expectError(again, 409, "approval_decided").message).toContain("rejected");
  });

  it("expires when nobody decides in time: the sidecar is told, and deciding is a 409", async () => {
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "tool:wait",
      action: "invoke",
      effect: "ask",
    });
    const asked = await gate(channel, "tool:wait", "invoke");
    await env.DB.prepare("update approval set expires_at = ? where id = ?")
      .bind(Date.now() - 1, asked.decision.approvalId)
      .run();
    expect((await ok(`${approvals()}/${asked.decision.approvalId}`, r.token)).status).toBe("expired");
    expectError(
      await api(`${approvals()}/${asked.decision.approvalId}/approve`, { token: r.token, body: { scope: "once" } }),
      409,
      "approval_expired",
    );
    const from = channel.log.frames.length;
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await decisionFor(channel, asked.decision.approvalId, from)).toMatchObject({ decision: "expired" });
    const expired = await ok(`${approvals()}?status=expired&instanceId=${instance.id}`, r.token);
    expect(expired.data.map((a: { id: string }) => a.id)).toContain(asked.decision.approvalId);
  });

  it("refuses bad requests, members without manage, anonymous callers, and other tenants", async () => {
    const asked = await gate(channel, "tool:pay", "invoke");
    const id = asked.decision.approvalId;
    expectError(
      await api(`${approvals()}/${id}/approve`, { token: r.token, body: { scope: "sometimes" } }),
      400,
      "validation_failed",
    );
    expectError(
      await api(`${approvals()}/${id}/reject`, { token: r.token, body: { message: "" } }),
      400,
      "validation_failed",
    );
    expectError(await api(`${approvals()}?status=maybe`, { token: r.token }), 400, "validation_failed");
    const member = await addMember(r.t, "member");
    expect((await api(`${approvals()}/${id}`, { token: member.token })).status).toBe(200);
    expectError(
      await api(`${approvals()}/${id}/approve`, { token: member.token, body: { scope: "once" } }),
      403,
      "forbidden",
    );
    expectError(await api(`${approvals()}/${id}/approve`, { body: { scope: "once" } }), 401, "unauthorized");
    expectError(await api("/api/me/approvals"), 401, "unauthorized");
    const other = await createTenant();
    expectError(await api(`${approvals()}/${id}`, { token: other.owner.token }), 404, "not_found");
    expectError(
      await api(`${tenantBase(other.id)}/approvals/${id}/approve`, {
        token: other.owner.token,
        body: { scope: "always" },
      }),
      404,
      "not_found",
    );
    expect((await ok(`${tenantBase(other.id)}/approvals`, other.owner.token)).data).toEqual([]);
    expect((await ok("/api/me/approvals", other.owner.token)).data.map((a: { id: string }) => a.id)).not.toContain(id);
    expectError(await api(`${approvals()}/apr_${"0".repeat(32)}`, { token: r.token }), 404, "not_found");
  });

  it("spend conditions use the wallet's real spend today", async () => {
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "tool:buy",
      action: "invoke",
      effect: "allow",
      conditions: { require_approval_above: { amount: "5" } },
    });
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "tool:tip",
      action: "invoke",
      effect: "allow",
      conditions: { max_spend_per_day: { amount: "3" } },
    });
    expect((await gate(channel, "tool:buy", "invoke", { cost: "4" })).decision.decision).toBe("allow");
    expect((await gate(channel, "tool:buy", "invoke", { cost: "6" })).decision.decision).toBe("pending");
    expect((await gate(channel, "tool:tip", "invoke", { cost: "1" })).decision.decision).toBe("allow");
    // The wallet pays 2.5 today: 2.5 + 1 is above the daily limit of 3, and 2.5 + 4 above the approval line.
    const wallet = `${tenantBase(r.t.id)}/wallets/${r.walletId}/transactions`;
    await ok(wallet, r.token, { direction: "inbound", amount: "10" });
    await ok(wallet, r.token, { direction: "outbound", amount: "2.5" });
    expect((await gate(channel, "tool:tip", "invoke", { cost: "1" })).decision.decision).toBe("deny");
    expect((await gate(channel, "tool:tip", "invoke", { cost: "0.5" })).decision.decision).toBe("allow");
    expect((await gate(channel, "tool:buy", "invoke", { cost: "4" })).decision.decision).toBe("pending");
  });

  it("refuses a gate.request of the wrong shape with frame.error, and an empty resource with a deny", async () => {
    const requestId = crypto.randomUUID();
    const from = channel.log.frames.length;
    channel.send({ type: "gate.request", requestId, agentAddress: channel.agentAddress, resource: "", action: 7 });
    expect(await channel.log.next("frame.error", from)).toEqual({
      type: "frame.error",
      frameType: "gate.request",
      field: "action",
      message: "Invalid input: expected string, received number",
    });
    channel.send({
      type: "gate.request",
      requestId,
      agentAddress: channel.agentAddress,
      resource: "",
      action: "invoke",
    });
    const decision = await channel.log.waitFor(
      (f) => f.type === "gate.decision" && f.requestId === requestId,
      "a decision",
      from,
    );
    expect(decision).toMatchObject({ decision: "deny", reason: expect.stringContaining("resource and action") });
    expect(channel.log.frames.slice(from).filter((f) => f.type === "gate.decision")).toHaveLength(1);
  });

  // Last: it stops the instance the other tests use.
  it("stopping the instance expires what it waited for: out of the inbox, and deciding is a 409", async () => {
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "tool:late",
      action: "invoke",
      effect: "ask",
    });
    const asked = await gate(channel, "tool:late", "invoke");
    const id = asked.decision.approvalId as string;
    expect((await ok("/api/me/approvals", r.token)).data.map((a: { id: string }) => a.id)).toContain(id);
    const stopped = await api(`${instancesOf(r.t.id)}/${instance.id}`, { method: "DELETE", token: r.token });
    expect(stopped.status).toBe(204);
    const after = await ok(`${approvals()}/${id}`, r.token);
    expect(after).toMatchObject({ status: "expired", resolvedAt: expect.any(String) });
    expect((await ok("/api/me/approvals", r.token)).data.map((a: { id: string }) => a.id)).not.toContain(id);
    expectError(
      await api(`${approvals()}/${id}/approve`, { token: r.token, body: { scope: "once" } }),
      409,
      "approval_expired",
    );
  });
});
