import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentInstance, agentSession, principal } from "../../src/db/schema";
import { addMember, api, createTenant, expectError, type TestTenant, type TestUser } from "./support/api";
import {
  createAgent,
  db,
  instancesOf,
  launch,
  mailRows,
  ok,
  type Runtime,
  SLOW,
  setUpRuntime,
  subscribe,
  tenantBase,
  textOf,
  until,
} from "./support/runtime";
import { type TestInstanceChannel, TestSidecar } from "./support/test-sidecar";

describe("instance routes", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let live: { id: string; address: string; sessionId: string };
  let channel: TestInstanceChannel;
  let otherAgentInstanceId: string;
  let stoppedId: string;
  let outsider: TestUser;
  let otherTenant: TestTenant;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
    const launched = await launch(r, sidecar);
    live = launched.instance as typeof live;
    channel = launched.channel;
    const otherAgent = await createAgent(r);
    otherAgentInstanceId = (await launch(r, sidecar, otherAgent.id)).instance.id;
    stoppedId = (await launch(r, sidecar)).instance.id;
    expect((await api(`${instancesOf(r.t.id)}/${stoppedId}`, { method: "DELETE", token: r.token })).status).toBe(204);
    otherTenant = await createTenant();
    outsider = otherTenant.owner;
  }, 40_000);

  afterAll(() => sidecar?.close());

  it("lists with agentId and status filters, newest first; 400 for a bad filter", async () => {
    const all = await api(instancesOf(r.t.id), { token: r.token });
    expect(all.status).toBe(200);
    expect(all.body.data.map((i: { id: string }) => i.id)).toEqual([stoppedId, otherAgentInstanceId, live.id]);
    expect(all.body.nextCursor).toBeNull();
    const shown = all.body.data.find((i: { id: string }) => i.id === live.id);
    expect(shown).toMatchObject({ status: "running", agentId: r.agentId, sidecarId: r.sidecarId });

    const byAgent = await api(`${instancesOf(r.t.id)}?agentId=${r.agentId}`, { token: r.token });
    expect(byAgent.body.data.map((i: { id: string }) => i.id)).toEqual([stoppedId, live.id]);
    const running = await api(`${instancesOf(r.t.id)}?status=running&agentId=${r.agentId}`, { token: r.token });
    expect(running.body.data.map((i: { id: string }) => i.id)).toEqual([live.id]);
    const stopped = await api(`${instancesOf(r.t.id)}?status=stopped`, { token: r.token });
    expect(stopped.body.data).toEqual([
      expect.objectContaining({ id: stoppedId, status: "stopped", sessionId: null, stopReason: "instance_stopped" }),
    ]);
    const paged = await api(`${instancesOf(r.t.id)}?limit=2`, { token: r.token });
    expect(paged.body.data).toHaveLength(2);
    const rest = await api(`${instancesOf(r.t.id)}?limit=2&cursor=${paged.body.nextCursor}`, { token: r.token });
    expect(rest.body.data.map((i: { id: string }) => i.id)).toEqual([live.id]);

    expectError(await api(`${instancesOf(r.t.id)}?status=sleeping`, { token: r.token }), 400, "validation_failed");
    expectError(
      await api(`${instancesOf(r.t.id)}?agentId=${"a".repeat(200)}`, { token: r.token }),
      400,
      "validation_failed",
    );
    expectError(await api(`${instancesOf(r.t.id)}?limit=0`, { token: r.token }), 400, "validation_failed");
  });

  it("gets one instance with its runtime status; a stopped one without", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${live.id}`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: live.id, status: "running", runtimeStatus: "idle", address: live.address });
    const stopped = await api(`${instancesOf(r.t.id)}/${stoppedId}`, { token: r.token });
    expect(stopped.body).toMatchObject({ id: stoppedId, status: "stopped", endedAt: expect.any(String) });
    expect(stopped.body.runtimeStatus).toBeUndefined();
  });

  it("health is ok while the sidecar holds the channel", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/health`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ liveness: "ok", readiness: "ok", lastCheckedAt: expect.any(String) });
    expectError(await api(`${instancesOf(r.t.id)}/${stoppedId}/health`, { token: r.token }), 410, "gone");
  });

  it("offerings: a plain array of the definition's offerings, also for a stopped instance", async () => {
    const empty = await api(`${instancesOf(r.t.id)}/${otherAgentInstanceId}/offerings`, { token: r.token });
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual([]);
    const first = await ok(`${tenantBase(r.t.id)}/offerings`, r.token, { agentId: r.agentId, name: "Basic" });
    const second = await ok(`${tenantBase(r.t.id)}/offerings`, r.token, { agentId: r.agentId, name: "Premium" });
    for (const id of [live.id, stoppedId]) {
      const res = await api(`${instancesOf(r.t.id)}/${id}/offerings`, { token: r.token });
      expect(res.status).toBe(200);
      expect(Array.isArray(res.body)).toBe(true);
      expect(res.body).toEqual([
        expect.objectContaining({ id: first.id, agentId: r.agentId, agentName: first.agentName, name: "Basic" }),
        expect.objectContaining({ id: second.id, agentId: r.agentId, name: "Premium" }),
      ]);
    }
  });

  it("mail-key: the same ASCII-armored public key every time", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/mail-key`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/pgp-keys");
    expect(res.body).toContain("-----BEGIN PGP PUBLIC KEY BLOCK-----");
    expect(res.body).not.toContain("PRIVATE");
    const again = await api(`${instancesOf(r.t.id)}/${live.id}/mail-key`, { token: r.token });
    expect(again.body).toBe(res.body);
    const other = await api(`${instancesOf(r.t.id)}/${otherAgentInstanceId}/mail-key`, { token: r.token });
    expect(other.body).not.toBe(res.body);
  });

  it("events: an SSE stream that starts with retry:, 400 for a bad cursor, 410 once stopped", async () => {
    const replayed = await subscribe(`${instancesOf(r.t.id)}/${live.id}`, r.token, "?cursor=0");
    const { res } = replayed;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(res.headers.get("cache-control")).toContain("no-cache");
    const text = await replayed.until("instance.running");
    await replayed.close();
    expect(text.startsWith("retry: 3000\n\n")).toBe(true);
    // Replayed from the start: every event has an id and the agent.event name.
    expect(text).toMatch(/id: 1\nevent: agent\.event\ndata: \{"type":"instance\.launched","seq":1/);
    expect(text).toMatch(/id: \d+\nevent: agent\.event\ndata: \{"type":"instance\.running"/);

    // Without a cursor the stream starts live: the first bytes are the retry hint.
    const fresh = await subscribe(`${instancesOf(r.t.id)}/${live.id}`, r.token);
    expect(await fresh.nextChunk()).toBe("retry: 3000\n\n");
    await fresh.close();

    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/events?cursor=abc`, { token: r.token }),
      400,
      "validation_failed",
    );
    expectError(await api(`${instancesOf(r.t.id)}/${stoppedId}/events`, { token: r.token }), 410, "gone");
  });

  it("sync: 202 sent, and the sidecar gets sync.request", async () => {
    const from = channel.log.frames.length;
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/sync`, { method: "POST", token: r.token });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ status: "sent" });
    const frame = await channel.log.next("sync.request", from);
    expect(frame).toMatchObject({ agentAddress: live.address, transferId: expect.any(String) });
    expectError(
      await api(`${instancesOf(r.t.id)}/${stoppedId}/sync`, { method: "POST", token: r.token }),
      409,
      "conflict",
    );
  });

  it("abort: 204 once the sidecar acks session.abort; 409 when not running; 400 for a bad reason", async () => {
    let from = channel.log.frames.length;
    const res = await api(`${instancesOf(r.t.id)}/${live.id}/abort`, { token: r.token, body: {} });
    expect(res.status, JSON.stringify(res.body)).toBe(204);
    expect(await channel.log.next("session.abort", from)).toMatchObject({
      agentAddress: live.address,
      reason: "user_disconnect",
      requestId: expect.any(String),
    });
    from = channel.log.frames.length;
    const killed = await api(`${instancesOf(r.t.id)}/${live.id}/abort`, {
      token: r.token,
      body: { reason: "admin_kill" },
    });
    expect(killed.status).toBe(204);
    expect((await channel.log.next("session.abort", from)).reason).toBe("admin_kill");

    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/abort`, { token: r.token, body: { reason: "boredom" } }),
      400,
      "validation_failed",
    );
    expectError(await api(`${instancesOf(r.t.id)}/${stoppedId}/abort`, { token: r.token, body: {} }), 409, "conflict");
  });

  it("mail: POST signs and delivers to the sidecar, GET lists it; 400 for a bad body; 409 when stopped", async () => {
    const from = channel.log.frames.length;
    const sent = await api(`${instancesOf(r.t.id)}/${live.id}/mail`, {
      token: r.token,
      body: { content: "hello agent", subject: "Greetings" },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    const domain = live.address.split("@")[1];
    expect(sent.body).toMatchObject({
      id: expect.stringMatching(/^sml_/),
      sessionId: live.sessionId,
      instanceId: live.id,
      direction: "inbound",
      status: "delivered",
      subject: "Greetings",
      from: [{ name: r.t.owner.name, email: `${r.t.owner.userId}@${domain}` }],
      to: [{ email: live.address }],
      messageId: `<${sent.body.id}@${domain}>`,
    });
    expect(textOf(sent.body)).toContain("hello agent");
    const inbound = await channel.log.next("mail.inbound", from);
    expect(inbound).toMatchObject({ agentAddress: live.address, mailId: sent.body.id });
    const mime = new TextDecoder().decode(Uint8Array.from(atob(inbound.rawMessage), (c) => c.charCodeAt(0)));
    expect(mime).toContain("multipart/signed");
    expect(mime).toContain("hello agent");

    const list = await api(`${instancesOf(r.t.id)}/${live.id}/mail`, { token: r.token });
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([expect.objectContaining({ id: sent.body.id, direction: "inbound" })]);
    expect(list.body.nextCursor).toBeNull();

    // A part of it as a blob: the signed text part is part 1.
    const blob = await api(`${instancesOf(r.t.id)}/blobs/blob_${sent.body.id}_1`, { token: r.token });
    expect(blob.status).toBe(200);
    expect(String(blob.body)).toContain("hello agent");
    expect(blob.headers.get("content-disposition")).toMatch(/^attachment/);
    expectError(await api(`${instancesOf(r.t.id)}/blobs/blob_${sent.body.id}_9`, { token: r.token }), 404, "not_found");

    for (const body of [{}, { content: "" }, { content: 5 }, { content: "x", subject: "s".repeat(501) }]) {
      const res = await api(`${instancesOf(r.t.id)}/${live.id}/mail`, { token: r.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expectError(
      await api(`${instancesOf(r.t.id)}/${stoppedId}/mail`, { token: r.token, body: { content: "hi" } }),
      409,
      "conflict",
    );
    expect((await mailRows(live.id)).length).toBe(1);
    expect(await mailRows(stoppedId)).toEqual([]);
  });

  it("blobs: a bad id is 400 before anything else; an unknown mail is 404", async () => {
    const noRole = await addMember(r.t, null);
    for (const token of [r.token, noRole.token]) {
      expectError(await api(`${instancesOf(r.t.id)}/blobs/bad-format`, { token }), 400, "bad_request");
      expectError(await api(`${instancesOf(r.t.id)}/blobs/blob_sml_x_1.a`, { token }), 400, "bad_request");
    }
    expectError(
      await api(`${instancesOf(r.t.id)}/blobs/blob_sml_0123456789abcdef0123456789abcdef_1`, { token: r.token }),
      404,
      "not_found",
    );
  });

  it("turns: an empty page before any event, 400 for a bad page", async () => {
    const res = await api(`${instancesOf(r.t.id)}/${otherAgentInstanceId}/turns`, { token: r.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [], nextCursor: null });
    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/turns?limit=abc`, { token: r.token }),
      400,
      "validation_failed",
    );
    expectError(
      await api(`${instancesOf(r.t.id)}/${live.id}/mail?cursor=%%%`, { token: r.token }),
      400,
      "invalid_cursor",
    );
  });

  /** Every route on one instance id: [method, path suffix, body]. */
  const routes = (id: string): [string, string, unknown][] => [
    ["GET", `/${id}`, undefined],
    ["GET", `/${id}/health`, undefined],
    ["GET", `/${id}/offerings`, undefined],
    ["GET", `/${id}/mail`, undefined],
    ["GET", `/${id}/mail-key`, undefined],
    ["GET", `/${id}/turns`, undefined],
    ["GET", `/${id}/events`, undefined],
    ["POST", `/${id}/mail`, { content: "hi" }],
    ["POST", `/${id}/abort`, {}],
    ["POST", `/${id}/sync`, undefined],
    ["DELETE", `/${id}`, undefined],
  ];

  it("404 for an unknown instance on every route", async () => {
    for (const [method, suffix, body] of routes("ins_0123456789abcdef0123456789abcdef")) {
      const res = await api(`${instancesOf(r.t.id)}${suffix}`, { method, token: r.token, body });
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body?.error?.code }).toEqual({
        route: `${method} ${suffix}`,
        status: 404,
        code: "not_found",
      });
    }
  });

  it("403 for a member without the grant on every route, and nothing is written or sent", async () => {
    const noRole = await addMember(r.t, null);
    const reader = await addMember(r.t, "member");
    const frames = channel.log.frames.length;
    const mails = (await mailRows(live.id)).length;
    for (const [method, suffix, body] of routes(live.id)) {
      const res = await api(`${instancesOf(r.t.id)}${suffix}`, { method, token: noRole.token, body });
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body?.error?.code }).toEqual({
        route: `${method} ${suffix}`,
        status: 403,
        code: "forbidden",
      });
    }
    expectError(await api(instancesOf(r.t.id), { token: noRole.token }), 403, "forbidden");
    // The seeded member role reads everything but may not write, manage or create.
    for (const [method, suffix, body] of routes(live.id).filter(([m]) => m !== "GET")) {
      const res = await api(`${instancesOf(r.t.id)}${suffix}`, { method, token: reader.token, body });
      expect({ route: `${method} ${suffix}`, status: res.status, code: res.body?.error?.code }).toEqual({
        route: `${method} ${suffix}`,
        status: 403,
        code: "forbidden",
      });
    }
    expect((await api(`${instancesOf(r.t.id)}/${live.id}/turns`, { token: reader.token })).status).toBe(200);
    await channel.settled();
    expect(channel.log.frames.slice(frames).map((f) => f.type)).toEqual(["pong"]);
    expect((await mailRows(live.id)).length).toBe(mails);
    const [row] = await db.select().from(agentInstance).where(eq(agentInstance.id, live.id));
    expect(row?.status).toBe("running");

    // The blob route checks the mail's instance itself.
    const [mail] = await mailRows(live.id);
    expectError(
      await api(`${instancesOf(r.t.id)}/blobs/blob_${mail?.id}_1`, { token: noRole.token }),
      403,
      "forbidden",
    );
    expect((await api(`${instancesOf(r.t.id)}/blobs/blob_${mail?.id}_1`, { token: reader.token })).status).toBe(200);
  });

  it("404 with no data for a user of another tenant, on every route", async () => {
    const [mail] = await mailRows(live.id);
    const frames = channel.log.frames.length;
    const blobPath = `/blobs/blob_${mail?.id}_1`;
    // An outsider on this tenant's paths, and another tenant's owner on their own tenant's paths.
    for (const [tenantId, token] of [
      [r.t.id, outsider.token],
      [otherTenant.id, otherTenant.owner.token],
    ] as const) {
      const all: [string, string, unknown][] = [
        ...routes(live.id),
        ["GET", "", undefined],
        ["POST", "", { agentId: r.agentId }],
        ["GET", blobPath, undefined],
      ];
      for (const [method, suffix, body] of all) {
        const res = await api(`${instancesOf(tenantId)}${suffix}`, { method, token, body });
        if (tenantId === otherTenant.id && method === "GET" && suffix === "") {
          // Their own list: nothing of this tenant in it.
          expect(res.body).toEqual({ data: [], nextCursor: null });
          continue;
        }
        expect({ route: `${method} ${suffix}`, status: res.status }).toEqual({
          route: `${method} ${suffix}`,
          status: 404,
        });
        const text = JSON.stringify(res.body);
        expect(text).not.toContain(live.address);
        expect(text).not.toContain(live.sessionId);
        expect(text).not.toContain("PGP");
      }
    }
    await channel.settled();
    expect(channel.log.frames.slice(frames).map((f) => f.type)).toEqual(["pong"]);
    const [row] = await db.select().from(agentInstance).where(eq(agentInstance.id, live.id));
    expect(row?.status).toBe("running");
  });

  it("DELETE: the sidecar undeploys, 204, then 409; the instance reads as stopped", async () => {
    const target = await launch(r, sidecar);
    const id = target.instance.id;
    const res = await api(`${instancesOf(r.t.id)}/${id}`, { method: "DELETE", token: r.token });
    expect(res.status).toBe(204);
    expect(await target.channel.log.next("agent.undeploy")).toMatchObject({
      agentAddress: target.instance.address,
      reason: "instance_stopped",
    });
    await until("the channel to close", async () => target.channel.closeEvents.length > 0);
    expect(target.channel.closeEvents[0]?.code).toBe(4010);
    const shown = await api(`${instancesOf(r.t.id)}/${id}`, { token: r.token });
    expect(shown.body).toMatchObject({ status: "stopped", sessionId: null, stopReason: "instance_stopped" });
    const [agentPrincipal] = await db.select().from(principal).where(eq(principal.refId, id));
    expect(agentPrincipal?.status).toBe("deactivated");
    const [session] = await db.select().from(agentSession).where(eq(agentSession.id, target.instance.sessionId));
    expect(session?.status).toBe("ended");
    expectError(await api(`${instancesOf(r.t.id)}/${id}`, { method: "DELETE", token: r.token }), 409, "conflict");
    expectError(await api(`${instancesOf(r.t.id)}/${id}/health`, { token: r.token }), 410, "gone");
    // History stays readable.
    expect((await api(`${instancesOf(r.t.id)}/${id}/turns`, { token: r.token })).status).toBe(200);
    expect((await api(`${instancesOf(r.t.id)}/${id}/mail`, { token: r.token })).status).toBe(200);
  });

  it("two DELETEs at once: one stops it (204), the other is a 409, and the sidecar hears it once", async () => {
    const target = await launch(r, sidecar);
    const path = `${instancesOf(r.t.id)}/${target.instance.id}`;
    const started = Date.now();
    const results = await Promise.all([1, 2].map(() => api(path, { method: "DELETE", token: r.token })));
    expect(results.map((x) => x.status).sort()).toEqual([204, 409]);
    expect(Date.now() - started).toBeLessThan(5_000);
    await target.channel.settled().catch(() => {});
    expect(target.channel.log.frames.filter((f) => f.type === "agent.undeploy")).toHaveLength(1);
  });

  it("a grant change reaches the running instance at once as grants.update", async () => {
    const target = await launch(r, sidecar);
    const [agentPrincipal] = await db.select().from(principal).where(eq(principal.refId, target.instance.id));
    const mark = target.channel.log.frames.length;
    const created = await api(`/api/tenants/${r.t.id}/grants`, {
      token: r.token,
      body: { principalId: agentPrincipal?.id, resource: "tool:search", action: "write", effect: "allow" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const update = await target.channel.log.next("grants.update", mark);
    expect(update.grants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: created.body.id, resource: "tool:search", action: "write" }),
      ]),
    );
    const mark2 = target.channel.log.frames.length;
    await api(`/api/tenants/${r.t.id}/grants/${created.body.id}`, { method: "DELETE", token: r.token });
    const after = await target.channel.log.next("grants.update", mark2);
    expect(after.grants.map((g: { id: string }) => g.id)).not.toContain(created.body.id);
    await api(`${instancesOf(r.t.id)}/${target.instance.id}`, { method: "DELETE", token: r.token });
  });

  it("deleting the definition stops its instances for real: the sidecar undeploys them", async () => {
    const agentId = (await createAgent(r)).id;
    const target = await launch(r, sidecar, agentId);
    const res = await api(`/api/tenants/${r.t.id}/agents/definitions/${agentId}`, { method: "DELETE", token: r.token });
    expect(res.status).toBe(204);
    expect(await target.channel.log.next("agent.undeploy")).toMatchObject({ reason: "agent_deleted" });
    const shown = await api(`${instancesOf(r.t.id)}/${target.instance.id}`, { token: r.token });
    expect(shown.body).toMatchObject({ status: "stopped", stopReason: "agent_deleted" });
    expectError(await api(`${instancesOf(r.t.id)}/${target.instance.id}/events`, { token: r.token }), 410, "gone");
  });
});
