/**
 * Logs of an agent and of an instance: what the hub recorded about a real instance run through the test
 * sidecar (launch, deploy, refused frames, gates and approvals, charges, failed turns, aborts, reconnects,
 * stops) and what the sidecar sent in `log` frames; filtered by level and time, paginated, bounded in count
 * and age, refused on bad input and hidden from other tenants.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { instanceLog } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { deleteExpiredLogs, LOG_RETENTION_MS, pruneInstanceLogs } from "../../src/runtime/instance-logs";
import { api, createTenant, expectError } from "./support/api";
import { db, instancesOf, launch, ok, type Runtime, SLOW, setUpRuntime, tenantBase, until } from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

type Entry = {
  id: string;
  timestamp: string;
  level: string;
  source: string;
  message: string;
  metadata: Record<string, unknown> | null;
  agentId: string;
  instanceId: string;
};

describe("logs", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let instanceId: string;
  let channel: TestInstanceChannel;
  const instanceLogs = (query = "", id = instanceId) =>
    api(`${instancesOf(r.t.id)}/${id}/logs${query}`, { token: r.token });
  const agentLogs = (query = "") => api(`${tenantBase(r.t.id)}/agents/${r.agentId}/logs${query}`, { token: r.token });
  /** Every entry of a query, following the cursors. */
  async function all(query = "", id = instanceId): Promise<Entry[]> {
    const entries: Entry[] = [];
    let cursor: string | null = null;
    do {
      const page = await instanceLogs(`?limit=100${query}${cursor ? `&cursor=${cursor}` : ""}`, id);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      entries.push(...page.body.data);
      cursor = page.body.nextCursor;
    } while (cursor);
    return entries;
  }
  const messages = (entries: Entry[]) => entries.map((e) => e.message);

  beforeAll(async () => {
    r = await setUpRuntime();
    // Priced, so a model call is charged to the wallet (a wallet event for the logs).
    await ok(
      `${tenantBase(r.t.id)}/providers/${r.providerId}`,
      r.token,
      {
        metadata: {
          baseURL: "http://127.0.0.1/echo",
          models: [{ id: "echo", pricing: { input: "3", output: "15", currency: "USD" } }],
        },
      },
      "PATCH",
    );
    await ok(`${tenantBase(r.t.id)}/wallets/${r.walletId}/transactions`, r.token, {
      direction: "inbound",
      amount: "10",
    });
    sidecar = await TestSidecar.connect(r.secret);
    const launched = await launch(r, sidecar);
    instanceId = launched.instance.id;
    channel = launched.channel;
    await channel.settled();
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("records the launch and deploy, and what the sidecar sends in log frames, newest first", async () => {
    channel.send({ type: "log", agentAddress: channel.agentAddress, level: "info", message: "workspace ready" });
    channel.send({
      type: "log",
      agentAddress: channel.agentAddress,
      level: "debug",
      message: "loaded 3 skills",
      metadata: { skills: ["a", "b", "c"] },
    });
    await channel.settled();
    const entries = await all();
    expect(messages(entries).reverse()).toEqual([
      expect.stringMatching(/^Launching on sidecar sdc_[0-9a-f]{32}$/),
      "Deployed: the sidecar acknowledged with the instance's key",
      "Running: the sidecar started the session",
      "workspace ready",
      "loaded 3 skills",
    ]);
    expect(entries[0]).toEqual({
      id: expect.stringMatching(/^log_[0-9a-f]{32}$/),
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      level: "debug",
      source: "sidecar",
      message: "loaded 3 skills",
      metadata: { skills: ["a", "b", "c"] },
      agentId: r.agentId,
      instanceId,
    });
    expect(entries.at(-1)).toMatchObject({
      level: "info",
      source: "hub",
      metadata: { sidecarId: r.sidecarId, walletId: r.walletId },
    });
    const times = entries.map((e) => Date.parse(e.timestamp));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it("records refused frames, gates, approvals, charges and failed turns", async () => {
    const { agentAddress } = channel;
    // A log frame of the wrong shape is refused, not recorded; the refusal is.
    let from = channel.log.frames.length;
    channel.send({ type: "log", agentAddress, level: "trace", message: "too chatty" });
    expect(await channel.log.next("frame.error", from)).toMatchObject({ frameType: "log", field: "level" });
    from = channel.log.frames.length;
    channel.send({ type: "log", agentAddress, level: "info", message: "x".repeat(4_097) });
    expect(await channel.log.next("frame.error", from)).toMatchObject({ frameType: "log", field: "message" });
    from = channel.log.frames.length;
    channel.send({ type: "log", agentAddress, level: "info", message: "m", metadata: { blob: "y".repeat(9_000) } });
    expect(await channel.log.next("frame.error", from)).toMatchObject({ frameType: "log", field: "metadata" });

    // A gate nothing allows is denied; one a grant answers `ask` waits for a person, who approves it.
    const principalId = (await channel.log.next("agent.deploy")).config.principalId;
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId,
      resource: "tool:send_mail",
      action: "invoke",
      effect: "ask",
    });
    channel.send({ type: "gate.request", requestId: "g1", agentAddress, resource: "tool:delete", action: "invoke" });
    from = channel.log.frames.length;
    channel.send({ type: "gate.request", requestId: "g2", agentAddress, resource: "tool:send_mail", action: "invoke" });
    const pending = await channel.log.waitFor((f) => f.type === "gate.decision" && f.requestId === "g2", "g2", from);
    expect(pending.decision).toBe("pending");
    await ok(`${tenantBase(r.t.id)}/approvals/${pending.approvalId}/approve`, r.token, { scope: "once" });

    // One model call, charged; then a turn that fails.
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.done", {
      turn: { role: "assistant", content: [{ type: "text", text: "ok" }], model: "echo" },
      usage: { input: 1000, output: 200 },
      source: "echo:echo",
    });
    channel.event("connector.reply", { content: "ok" });
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.error", { error: { category: "provider_error", message: "upstream 500" } });
    channel.event("connector.reply", { content: "sorry" });
    await channel.settled();

    const entries = await until("the approval decision in the logs", async () => {
      const got = await all();
      return got.some((e) => e.message.includes("approved")) && got;
    });
    const byMessage = (pattern: RegExp) => entries.find((e) => pattern.test(e.message));
    expect(byMessage(/^Refused log \(level\) from the sidecar: /)).toMatchObject({ level: "warn", source: "hub" });
    expect(byMessage(/^Refused log \(message\) from the sidecar: /)).toMatchObject({ level: "warn" });
    expect(byMessage(/^Refused log \(metadata\) from the sidecar: /)?.metadata).toMatchObject({
      type: "frame.error",
      field: "metadata",
    });
    expect(messages(entries)).not.toContain("too chatty");
    expect(byMessage(/^Gate denied invoke on tool:delete: no grant allows it$/)).toMatchObject({ level: "warn" });
    expect(byMessage(/^Approval apr_[0-9a-f]{32} requested: invoke on tool:send_mail/)).toMatchObject({
      level: "info",
      metadata: { approvalId: pending.approvalId, resource: "tool:send_mail", action: "invoke" },
    });
    expect(byMessage(/^Approval apr_[0-9a-f]{32} approved: invoke on tool:send_mail$/)).toMatchObject({
      level: "info",
      metadata: { approvalId: pending.approvalId, status: "approved", scope: "once" },
    });
    expect(byMessage(/^Charged 0\.006 to wallet wlt_[0-9a-f]{32} for a model call$/)).toMatchObject({
      level: "info",
      metadata: { walletId: r.walletId, amount: "0.006", transactionId: expect.stringMatching(/^txn_/) },
    });
    expect(byMessage(/^Turn itn_[0-9a-f]{32} failed: provider_error: upstream 500$/)).toMatchObject({
      level: "error",
      metadata: { errors: [{ category: "provider_error", message: "upstream 500" }] },
    });
  });

  it("filters by level (this one or more severe) and by time", async () => {
    const errors = await all("&level=error");
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors.map((e) => e.level))).toEqual(new Set(["error"]));
    const warnings = await all("&level=warn");
    expect(new Set(warnings.map((e) => e.level))).toEqual(new Set(["warn", "error"]));
    const infos = await all("&level=info");
    expect(infos.map((e) => e.level)).not.toContain("debug");
    expect((await all("&level=debug")).length).toBe((await all()).length);

    const everything = await all();
    const middle = everything[Math.floor(everything.length / 2)] as Entry;
    const newer = await all(`&startTime=${middle.timestamp}`);
    expect(newer.every((e) => e.timestamp >= middle.timestamp)).toBe(true);
    expect(newer.map((e) => e.id)).toContain(middle.id);
    const older = await all(`&endTime=${middle.timestamp}`);
    expect(older.every((e) => e.timestamp < middle.timestamp)).toBe(true);
    expect(newer.length + older.length).toBe(everything.length);
    expect(await all("&startTime=2020-01-01T00:00:00Z&endTime=2020-01-02T00:00:00Z")).toEqual([]);
  });

  it("pages with the cursor: every entry once, in order", async () => {
    const everything = await all();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await instanceLogs(`?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.data.map((e: Entry) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(everything.map((e) => e.id));
  });

  it("records aborts, the sidecar leaving and coming back, and the stop", async () => {
    channel.event("inference.start", { model: "echo" });
    await channel.settled();
    const aborted = await api(`${instancesOf(r.t.id)}/${instanceId}/abort`, {
      token: r.token,
      body: { reason: "admin_kill" },
    });
    expect(aborted.status).toBe(204);
    channel.drop();
    await until("the disconnect in the logs", async () =>
      (await all()).some((e) => e.message === "The sidecar disconnected"),
    );
    await channel.reconnect();
    await until("the reconnect in the logs", async () =>
      (await all()).some((e) => e.message === "The sidecar reconnected and proved the instance's key"),
    );
    const stopped = await api(`${instancesOf(r.t.id)}/${instanceId}`, { token: r.token, method: "DELETE" });
    expect(stopped.status).toBe(204);
    const entries = await all();
    const newest = messages(entries).slice(0, 4).reverse();
    expect(newest).toEqual([
      "Aborted (admin_kill): the sidecar stopped the turn",
      "The sidecar disconnected",
      "The sidecar reconnected and proved the instance's key",
      "Stopped (instance_stopped)",
    ]);
    expect(entries.find((e) => e.message === "The sidecar disconnected")?.level).toBe("warn");
    expect(
      entries.find((e) => /^Turn itn_\w+ failed: The turn was aborted \(admin_kill\)$/.test(e.message)),
    ).toMatchObject({
      level: "error",
      metadata: { reason: "admin_kill" },
    });
  });

  it("the agent's logs hold every instance's; an instance's only its own", async () => {
    const second = await launch(r, sidecar);
    await second.channel.settled();
    second.channel.send({ type: "log", agentAddress: second.channel.agentAddress, level: "warn", message: "second" });
    await second.channel.settled();
    const agent = await agentLogs("?limit=100");
    expect(agent.status).toBe(200);
    const ids = new Set(agent.body.data.map((e: Entry) => e.instanceId));
    expect(ids).toEqual(new Set([instanceId, second.instance.id]));
    expect(messages(agent.body.data)).toContain("second");
    expect(messages(await all())).not.toContain("second");
    expect(messages(await all("", second.instance.id))).toContain("second");
    const warned = await agentLogs("?level=warn&limit=100");
    expect(new Set(warned.body.data.map((e: Entry) => e.level))).toEqual(new Set(["warn", "error"]));
  });

  it("keeps at most the newest entries of an instance, and none past the retention", async () => {
    const { instance, channel: third } = await launch(r, sidecar);
    await third.settled();
    for (const message of ["one", "two", "three"]) {
      third.send({ type: "log", agentAddress: third.agentAddress, level: "info", message });
    }
    await third.settled();
    await pruneInstanceLogs(db, instance.id, 2);
    expect(messages(await all("", instance.id))).toEqual(["three", "two"]);

    // An entry past the retention is never listed, and the cleanup pass deletes it.
    const old = newId("instanceLog");
    await db.insert(instanceLog).values({
      id: old,
      tenantId: r.t.id,
      agentId: r.agentId,
      instanceId: instance.id,
      level: "error",
      source: "hub",
      message: "long ago",
      createdAt: new Date(Date.now() - LOG_RETENTION_MS - 60_000),
    });
    expect(messages(await all("", instance.id))).toEqual(["three", "two"]);
    expect(messages((await agentLogs("?limit=100")).body.data)).not.toContain("long ago");
    await deleteExpiredLogs(db);
    expect(await db.select().from(instanceLog).where(eq(instanceLog.id, old))).toEqual([]);
    expect(messages(await all("", instance.id))).toEqual(["three", "two"]);
  });

  it("refuses bad queries with 400", async () => {
    for (const logs of [instanceLogs, agentLogs]) {
      expectError(await logs("?level=verbose"), 400, "validation_failed");
      expectError(await logs("?startTime=yesterday"), 400, "validation_failed");
      expectError(await logs("?endTime=2026-13-01T00:00:00Z"), 400, "validation_failed");
      expect(
        expectError(await logs("?startTime=2026-01-02T00:00:00Z&endTime=2026-01-01T00:00:00Z"), 400, "invalid_range")
          .message,
      ).toContain("startTime");
      expectError(await logs("?startTime=2026-01-01T00:00:00Z&endTime=2026-01-01T00:00:00Z"), 400, "invalid_range");
      expectError(await logs("?limit=0"), 400, "validation_failed");
      expectError(await logs("?limit=101"), 400, "validation_failed");
      expectError(await logs("?cursor=not-a-cursor!"), 400, "invalid_cursor");
    }
  });

  it("another tenant's agent or instance is 404, and so is an unknown one", async () => {
    expectError(await api(`${tenantBase(r.t.id)}/agents/agt_nope/logs`, { token: r.token }), 404, "not_found");
    expectError(await api(`${instancesOf(r.t.id)}/ins_nope/logs`, { token: r.token }), 404, "not_found");
    const stranger = await createTenant();
    const token = stranger.owner.token;
    expectError(await api(`${tenantBase(stranger.id)}/agents/${r.agentId}/logs`, { token }), 404, "not_found");
    expectError(await api(`${instancesOf(stranger.id)}/${instanceId}/logs`, { token }), 404, "not_found");
    expectError(await api(`${tenantBase(r.t.id)}/agents/${r.agentId}/logs`, { token }), 404, "not_found");
    expectError(await api(`${instancesOf(r.t.id)}/${instanceId}/logs`, { token }), 404, "not_found");
    expectError(await api(`${instancesOf(r.t.id)}/${instanceId}/logs`), 401, "unauthorized");
  });
});
