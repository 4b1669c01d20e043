/**
 * Usage metrics of a tenant and of an agent: what the recorded turns and mail add up to, per range and per
 * bucket, with bad ranges refused and other tenants' agents not found.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inferenceTurn } from "../../src/db/schema";
import { api, createTenant, expectError } from "./support/api";
import { createAgent, db, launch, ok, type Runtime, SLOW, setUpRuntime, tenantBase, until } from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

/** One turn: a model call with its usage, then the reply (completed) or an error (failed). */
function turn(channel: TestInstanceChannel, usage: { input: number; output: number }, fails: boolean) {
  channel.event("inference.start", { model: "echo" });
  channel.event("inference.done", {
    turn: { role: "assistant", content: [{ type: "text", text: "ok" }], model: "echo" },
    usage,
    source: "echo:echo",
  });
  if (fails) channel.event("inference.error", { error: { category: "provider_error", message: "upstream 500" } });
  channel.event("connector.reply", { content: "ok" });
}

describe("metrics", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let instanceId: string;
  const metrics = (path: string, query = "") => api(`${tenantBase(r.t.id)}${path}${query}`, { token: r.token });

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
    const launched = await launch(r, sidecar);
    instanceId = launched.instance.id;
    await ok(`${tenantBase(r.t.id)}/agents/instances/${instanceId}/mail`, r.token, { content: "hello" });
    turn(launched.channel, { input: 10, output: 5 }, false);
    turn(launched.channel, { input: 7, output: 0 }, true);
    await launched.channel.settled();
    await until("both turns to end", async () => {
      const rows = await db.select().from(inferenceTurn).where(eq(inferenceTurn.instanceId, instanceId));
      return rows.length === 2 && rows.every((t) => t.status !== "running") && rows;
    });
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("adds up the tenant's and the agent's turns, tokens, messages and failures", async () => {
    const rows = await db.select().from(inferenceTurn).where(eq(inferenceTurn.instanceId, instanceId));
    const failed = rows.filter((t) => t.status === "failed").length;
    for (const path of ["/metrics", `/agents/${r.agentId}/metrics`]) {
      const res = await metrics(path);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({
        turns: 2,
        failedTurns: failed,
        errorRate: failed / 2,
        tokenUsage: { input: 17, output: 5, total: 22 },
        messages: { inbound: 1 },
        series: null,
      });
      expect(failed).toBe(1);
      expect(res.body.latencyMs.p50).toEqual(expect.any(Number));
      expect(res.body.latencyMs.p95).toBeGreaterThanOrEqual(res.body.latencyMs.p50);
      expect(res.body.avgLatencyMs).toBe(res.body.latencyMs.avg);
    }
    expect((await metrics("/metrics")).body.agentId).toBeNull();
  });

  it("counts nothing outside the range or for another agent, and buckets what is inside", async () => {
    const other = await createAgent(r);
    expect((await metrics(`/agents/${other.id}/metrics`)).body).toMatchObject({ turns: 0, messageCount: 0, cost: "0" });
    const past = await metrics("/metrics", "?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z");
    expect(past.body).toMatchObject({ turns: 0, errorRate: 0, latencyMs: { avg: null, p50: null, p95: null } });
    const to = new Date(Date.now() + 60_000).toISOString();
    const from = new Date(Date.now() - 6 * 3_600_000).toISOString();
    const series = await metrics("/metrics", `?bucket=hour&from=${from}&to=${to}`);
    expect(series.status).toBe(200);
    expect(series.body.series).toHaveLength(7);
    expect(series.body.series.reduce((n: number, b: { turns: number }) => n + b.turns, 0)).toBe(2);
    const busy = series.body.series.filter((b: { turns: number }) => b.turns > 0);
    expect(busy).toEqual([expect.objectContaining({ turns: 2, tokenUsage: expect.objectContaining({ total: 22 }) })]);
  });

  it("refuses bad ranges and hides other tenants' agents", async () => {
    expectError(await metrics("/metrics", "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), 400, "invalid_range");
    expectError(
      await metrics("/metrics", "?bucket=minute&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"),
      400,
      "invalid_range",
    );
    expectError(await metrics("/metrics", "?from=yesterday"), 400, "validation_failed");
    expectError(await metrics("/metrics", "?bucket=week"), 400, "validation_failed");
    expectError(await metrics("/agents/agt_nope/metrics"), 404, "not_found");
    const stranger = await createTenant();
    expectError(
      await api(`${tenantBase(stranger.id)}/agents/${r.agentId}/metrics`, { token: stranger.owner.token }),
      404,
      "not_found",
    );
    expectError(await api(`${tenantBase(r.t.id)}/metrics`, { token: stranger.owner.token }), 404, "not_found");
    expectError(await api(`${tenantBase(r.t.id)}/metrics`), 401, "unauthorized");
  });
});
