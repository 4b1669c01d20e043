/**
 * Changes that reach a running instance at once: a credential rotated, revoked or deleted becomes
 * `sources.update` for the sidecars whose sources came from it; an abort ends the turn in flight, failed
 * with the reason, whatever the sidecar sends about it afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, createTenant } from "./support/api";
import {
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
import { TestSidecar } from "./support/test-sidecar";

describe("live updates to a running instance", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  const credential = (path = "") => `${tenantBase(r.t.id)}/credentials/${r.credentialId}${path}`;

  it("a rotated secret reaches the sidecar as sources.update within a second; a revoked one leaves no source", async () => {
    const { channel } = await launch(r, sidecar);
    const deploy = await channel.log.next("agent.deploy");
    expect(deploy.config.sources[0]).toMatchObject({ apiKey: "echo-secret-value", credentialId: r.credentialId });

    const from = channel.log.frames.length;
    const started = Date.now();
    await ok(credential(), r.token, { secret: "rotated-secret" }, "PATCH");
    const update = await channel.log.next("sources.update", from, 1_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(update.sources).toEqual([
      expect.objectContaining({ apiKey: "rotated-secret", credentialId: r.credentialId }),
    ]);
    expect(update.defaultSource).toBe(update.sources[0].id);

    const revokedAt = channel.log.frames.length;
    await ok(credential(), r.token, { status: "revoked" }, "PATCH");
    const revoked = await channel.log.next("sources.update", revokedAt, 1_000);
    // No usable credential is left: the sidecar must not call a model until it gets another.
    expect(revoked.sources).toEqual([]);

    const restoredAt = channel.log.frames.length;
    await ok(credential(), r.token, { status: "active", secret: "echo-secret-value" }, "PATCH");
    const restored = await channel.log.next("sources.update", restoredAt, 1_000);
    expect(restored.sources).toEqual([expect.objectContaining({ apiKey: "echo-secret-value" })]);
  });

  it("a credential the instance does not use sends nothing", async () => {
    const { channel } = await launch(r, sidecar);
    await channel.log.next("agent.deploy");
    const other = await ok(`${tenantBase(r.t.id)}/credentials`, r.token, {
      name: "unused-key",
      type: "api_key",
      providerId: r.providerId,
      secret: "unused",
    });
    const from = channel.log.frames.length;
    await ok(`${tenantBase(r.t.id)}/credentials/${other.id}`, r.token, { secret: "still unused" }, "PATCH");
    await ok(`${tenantBase(r.t.id)}/credentials/${other.id}`, r.token, undefined, "DELETE");
    await channel.settled();
    expect(channel.log.frames.slice(from).filter((f) => f.type === "sources.update")).toEqual([]);
  });

  it("another tenant's credential change reaches none of this tenant's instances", async () => {
    const { channel } = await launch(r, sidecar);
    await channel.log.next("agent.deploy");
    const other = await createTenant();
    const provider = await ok(`${tenantBase(other.id)}/providers`, other.owner.token, {
      name: "echo",
      plugin: "echo",
      metadata: { baseURL: "http://127.0.0.1/echo" },
    });
    const theirs = await ok(`${tenantBase(other.id)}/credentials`, other.owner.token, {
      name: "theirs",
      type: "api_key",
      providerId: provider.id,
      secret: "x",
    });
    const from = channel.log.frames.length;
    await ok(`${tenantBase(other.id)}/credentials/${theirs.id}`, other.owner.token, { secret: "y" }, "PATCH");
    await channel.settled();
    expect(channel.log.frames.slice(from).filter((f) => f.type === "sources.update")).toEqual([]);
    // And another tenant cannot touch this tenant's credential at all.
    const res = await api(credential(), { method: "PATCH", token: other.owner.token, body: { secret: "z" } });
    expect(res.status).toBe(404);
  });

  it("abort ends the turn in flight failed with its reason and the instance idle, whatever the sidecar sends next", async () => {
    const { instance, channel } = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${instance.id}`;
    const stream = await subscribe(path, r.token);
    channel.event("inference.start", { model: "echo" });
    channel.event("inference.text.delta", { token: "thinking about it" });
    await channel.settled();
    expect((await ok(path, r.token)).runtimeStatus).toBe("busy");

    const res = await api(`${path}/abort`, { token: r.token, body: { reason: "admin_kill" } });
    expect(res.status).toBe(204);
    const text = await stream.until('"data":{"status":"idle"}');
    expect(text).toMatch(/"type":"turn.failed","seq":\d+,"data":\{"turnId":"itn_[0-9a-f]+","reason":"admin_kill"\}/);
    expect(text).toContain('"data":{"status":"idle"}');

    // A sidecar that keeps talking about the aborted turn changes nothing.
    channel.event("inference.done", {
      turn: { role: "assistant", content: [{ type: "text", text: "late" }], model: "echo" },
      usage: { input: 1, output: 1 },
    });
    channel.event("connector.reply", { content: "late" });
    await channel.settled();
    const turns = await ok(`${path}/turns`, r.token);
    expect(turns.data).toHaveLength(1);
    expect(turns.data[0]).toMatchObject({ status: "failed" });
    expect(turns.data[0].parts.map((p: { type: string }) => p.type)).toEqual(["step-start", "error"]);
    expect(turns.data[0].parts[1]).toMatchObject({ metadata: { category: "admin_kill" } });
    await until("the instance idle", async () => (await ok(path, r.token)).runtimeStatus === "idle");
    await stream.close();
  });
});
