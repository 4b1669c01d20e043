/** Sidecars: registry over HTTP (secret shown once), load, liveness, authentication and scheduling. */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import { agent, agentInstance, type instanceStatuses, principal, sidecar } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import { sha256 } from "../../src/lib/secret-digest";
import { SIDECAR_TIMEOUT_MS } from "../../src/runtime/protocol";
import {
  authenticateSidecar,
  createSidecar,
  markSidecarOffline,
  markSidecarOnline,
  pickSidecar,
  recordHeartbeat,
} from "../../src/runtime/sidecars";
import { addMember, api, createTenant, expectError, type TestTenant, unique } from "./support/api";

const db = getDb(env);
const base = (tenantId: string) => `/api/tenants/${tenantId}/sidecars`;
const storedRow = async (id: string) => (await db.select().from(sidecar).where(eq(sidecar.id, id)).limit(1))[0];
const rowsOf = async (tenantId: string) => db.select().from(sidecar).where(eq(sidecar.tenantId, tenantId));

async function register(t: TestTenant, body: Record<string, unknown> = {}) {
  const res = await api(base(t.id), { token: t.owner.token, body: { name: unique("host-"), ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; secret: string; name: string };
}

/** Instance rows are inserted directly: launching is separate work; only the assignment matters here. */
async function addInstances(
  t: { id: string; ownerPrincipalId: string },
  sidecarId: string | null,
  statuses: (typeof instanceStatuses)[number][],
) {
  const agentId = newId("agent");
  await db.insert(agent).values({ id: agentId, tenantId: t.id, creatorPrincipalId: t.ownerPrincipalId, name: "a" });
  for (const status of statuses) {
    const id = newId("instance");
    const principalId = newId("principal");
    await db.batch([
      db.insert(principal).values({ id: principalId, tenantId: t.id, kind: "agent", refId: id }),
      db.insert(agentInstance).values({
        id,
        agentId,
        tenantId: t.id,
        principalId,
        address: `${id}@x.localhost`,
        status,
        sidecarId,
      }),
    ]);
  }
}

describe("sidecar registry", () => {
  it("registers a sidecar, shows its secret once and stores only its SHA-256", async () => {
    const t = await createTenant();
    const res = await api(base(t.id), {
      token: t.owner.token,
      body: { name: "host-1", url: "https://runtime-1.example.test", capacity: 8 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^sdc_[0-9a-f]{32}$/),
      tenantId: t.id,
      name: "host-1",
      url: "https://runtime-1.example.test",
      status: "offline",
      capacity: 8,
      liveInstances: 0,
      lastHeartbeat: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      secret: expect.stringMatching(/^ahs_[A-Za-z0-9_-]{43}$/),
    });
    const { id, secret } = res.body;
    const row = await storedRow(id);
    expect([...(row?.secretHash ?? [])]).toEqual([...(await sha256(secret))]);
    const { secretHash: _hash, ...columns } = row ?? {};
    expect(JSON.stringify(columns)).not.toContain(secret.slice(4));

    const hashHex = [...(row?.secretHash ?? [])].map((b) => b.toString(16).padStart(2, "0")).join("");
    const hashB64 = btoa(String.fromCharCode(...(row?.secretHash ?? [])));
    const get = await api(`${base(t.id)}/${id}`, { token: t.owner.token });
    const list = await api(base(t.id), { token: t.owner.token });
    expect(get.status).toBe(200);
    expect(list.status).toBe(200);
    const { secret: _secret, ...shown } = res.body;
    expect(get.body).toEqual(shown);
    expect(list.body).toEqual({ data: [shown], nextCursor: null });
    for (const text of [JSON.stringify(get.body), JSON.stringify(list.body)]) {
      expect(text).not.toContain(secret.slice(4));
      expect(text.toLowerCase()).not.toContain(hashHex);
      expect(text).not.toContain(hashB64.slice(0, 20));
      expect(text).not.toMatch(/secret|hash/i);
    }
  });

  it("defaults capacity to 16 and url to null; updates, heartbeats and deletes", async () => {
    const t = await createTenant();
    const created = await register(t, { name: "host-a" });
    expect(created).toMatchObject({ capacity: 16, url: null, status: "offline" });
    const id = created.id;

    const patched = await api(`${base(t.id)}/${id}`, {
      method: "PATCH",
      token: t.owner.token,
      body: { name: "host-b", url: "http://10.0.0.5:8080", capacity: 1000 },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ id, name: "host-b", url: "http://10.0.0.5:8080", capacity: 1000 });
    expect(patched.body.secret).toBeUndefined();
    const cleared = await api(`${base(t.id)}/${id}`, { method: "PATCH", token: t.owner.token, body: { url: null } });
    expect(cleared.body).toMatchObject({ name: "host-b", url: null, capacity: 1000 });

    const before = Date.now();
    const beat = await api(`${base(t.id)}/${id}/heartbeat`, { method: "POST", token: t.owner.token });
    expect(beat.status).toBe(204);
    const alive = await api(`${base(t.id)}/${id}`, { token: t.owner.token });
    expect(alive.body.status).toBe("online");
    expect(Date.parse(alive.body.lastHeartbeat)).toBeGreaterThanOrEqual(before);

    // A heartbeat older than the timeout reads as offline, even though the row still says online.
    await db
      .update(sidecar)
      .set({ lastHeartbeat: new Date(Date.now() - SIDECAR_TIMEOUT_MS - 1000) })
      .where(eq(sidecar.id, id));
    expect((await api(`${base(t.id)}/${id}`, { token: t.owner.token })).body.status).toBe("offline");

    expect((await api(`${base(t.id)}/${id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    expectError(await api(`${base(t.id)}/${id}`, { token: t.owner.token }), 404, "not_found");
    expect(await storedRow(id)).toBeUndefined();
  });

  it("counts live instances and refuses to delete a sidecar that still runs some", async () => {
    const t = await createTenant();
    const busy = await register(t);
    // A failed launch (`error`) holds no place: the sidecar is not asked to run it.
    await addInstances(t, busy.id, ["running", "deployed", "error", "stopped", "stopped"]);
    expect((await api(`${base(t.id)}/${busy.id}`, { token: t.owner.token })).body.liveInstances).toBe(2);
    const list = await api(base(t.id), { token: t.owner.token });
    expect(list.body.data.map((s: { liveInstances: number }) => s.liveInstances)).toEqual([2]);

    const refused = await api(`${base(t.id)}/${busy.id}`, { method: "DELETE", token: t.owner.token });
    expectError(refused, 409, "conflict");
    expect(await storedRow(busy.id)).toBeDefined();

    await db.update(agentInstance).set({ status: "stopped" }).where(eq(agentInstance.sidecarId, busy.id));
    expect((await api(`${base(t.id)}/${busy.id}`, { token: t.owner.token })).body.liveInstances).toBe(0);
    expect((await api(`${base(t.id)}/${busy.id}`, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    // The stopped instances outlive it, unassigned.
    const orphans = await db.select().from(agentInstance).where(eq(agentInstance.tenantId, t.id));
    expect(orphans.map((i) => i.sidecarId)).toEqual(orphans.map(() => null));
  });

  it("pages the list newest first", async () => {
    const t = await createTenant();
    const names = [];
    for (let i = 0; i < 3; i++) names.push((await register(t, { name: `host-${i}` })).name);
    const first = await api(`${base(t.id)}?limit=2`, { token: t.owner.token });
    expect(first.body.data.map((s: { name: string }) => s.name)).toEqual(["host-2", "host-1"]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await api(`${base(t.id)}?limit=2&cursor=${first.body.nextCursor}`, { token: t.owner.token });
    expect(second.body).toMatchObject({ data: [{ name: "host-0" }], nextCursor: null });
    expectError(await api(`${base(t.id)}?cursor=garbage!`, { token: t.owner.token }), 400, "invalid_cursor");
  });

  it("answers 404 for unknown sidecars", async () => {
    const t = await createTenant();
    const missing = `${base(t.id)}/${newId("sidecar")}`;
    expectError(await api(missing, { token: t.owner.token }), 404, "not_found");
    expectError(await api(missing, { method: "PATCH", token: t.owner.token, body: { name: "x" } }), 404, "not_found");
    expectError(await api(missing, { method: "DELETE", token: t.owner.token }), 404, "not_found");
    expectError(await api(`${missing}/heartbeat`, { method: "POST", token: t.owner.token }), 404, "not_found");
    expectError(await api(`${base(t.id)}/not-an-id`, { token: t.owner.token }), 404, "not_found");
  });

  it("lets a member read but not register, change, heartbeat or delete (nothing written)", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const existing = await register(t, { name: "host-x" });
    const before = await storedRow(existing.id);
    expect((await api(base(t.id), { token: member.token })).status).toBe(200);
    expect((await api(`${base(t.id)}/${existing.id}`, { token: member.token })).status).toBe(200);

    expectError(await api(base(t.id), { token: member.token, body: { name: "mine" } }), 403, "forbidden");
    const one = `${base(t.id)}/${existing.id}`;
    expectError(
      await api(one, { method: "PATCH", token: member.token, body: { name: "renamed", capacity: 1 } }),
      403,
      "forbidden",
    );
    expectError(await api(`${one}/heartbeat`, { method: "POST", token: member.token }), 403, "forbidden");
    expectError(await api(one, { method: "DELETE", token: member.token }), 403, "forbidden");
    expect(await rowsOf(t.id)).toEqual([before]);
  });

  it("hides a tenant's sidecars from other tenants", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const mine = await register(a, { name: "host-a" });
    const outsider = `${base(a.id)}/${mine.id}`;
    expectError(await api(base(a.id), { token: b.owner.token }), 404, "not_found");
    expectError(await api(outsider, { token: b.owner.token }), 404, "not_found");
    expectError(await api(base(a.id), { token: b.owner.token, body: { name: "intruder" } }), 404, "not_found");
    expectError(await api(outsider, { method: "DELETE", token: b.owner.token }), 404, "not_found");
    expectError(await api(`${outsider}/heartbeat`, { method: "POST", token: b.owner.token }), 404, "not_found");
    // Through its own tenant's path, B cannot reach A's sidecar either.
    const crossPath = `${base(b.id)}/${mine.id}`;
    expectError(await api(crossPath, { token: b.owner.token }), 404, "not_found");
    expectError(await api(crossPath, { method: "PATCH", token: b.owner.token, body: { name: "x" } }), 404, "not_found");
    expectError(await api(crossPath, { method: "DELETE", token: b.owner.token }), 404, "not_found");
    expectError(await api(`${crossPath}/heartbeat`, { method: "POST", token: b.owner.token }), 404, "not_found");
    expect((await api(base(b.id), { token: b.owner.token })).body.data).toEqual([]);
    const row = await storedRow(mine.id);
    expect(row).toMatchObject({ name: "host-a", status: "offline", lastHeartbeat: null, tenantId: a.id });
  });

  it("rejects bad input with 400 and writes nothing", async () => {
    const t = await createTenant();
    const bodies = [
      {},
      { name: "" },
      { name: "   " },
      { name: "x".repeat(101) },
      { name: 5 },
      { name: "h", capacity: 0 },
      { name: "h", capacity: 1001 },
      { name: "h", capacity: 1.5 },
      { name: "h", capacity: "8" },
      { name: "h", url: "not a url" },
      { name: "h", url: 7 },
    ];
    for (const body of bodies) {
      expectError(await api(base(t.id), { token: t.owner.token, body }), 400, "validation_failed");
    }
    expectError(await api(base(t.id), { token: t.owner.token, body: "{nope" }), 400, "invalid_json");
    expect(await rowsOf(t.id)).toEqual([]);

    const existing = await register(t, { name: "host-ok" });
    const before = await storedRow(existing.id);
    for (const body of [{ capacity: 0 }, { name: "" }, { url: "ftp//x" }, { capacity: -3 }]) {
      expectError(
        await api(`${base(t.id)}/${existing.id}`, { method: "PATCH", token: t.owner.token, body }),
        400,
        "validation_failed",
      );
    }
    expect(await storedRow(existing.id)).toEqual(before);
  });

  it("refuses duplicate names in a tenant with 409, but not across tenants", async () => {
    const t = await createTenant();
    await register(t, { name: "host-dup" });
    const other = await register(t, { name: "host-other" });
    expectError(await api(base(t.id), { token: t.owner.token, body: { name: "host-dup" } }), 409, "conflict");
    expectError(
      await api(`${base(t.id)}/${other.id}`, { method: "PATCH", token: t.owner.token, body: { name: "host-dup" } }),
      409,
      "conflict",
    );
    expect((await rowsOf(t.id)).map((r) => r.name).sort()).toEqual(["host-dup", "host-other"]);
    const u = await createTenant();
    expect((await register(u, { name: "host-dup" })).name).toBe("host-dup");
  });
  it("is documented in the OpenAPI document under the Sidecars tag", async () => {
    const doc = (await api("/openapi.json")).body;
    expect(doc.tags.map((tag: { name: string }) => tag.name)).toContain("Sidecars");
    const paths = Object.keys(doc.paths).filter((p) => p.includes("/sidecars"));
    expect(paths.sort()).toEqual([
      "/api/sidecars/connect",
      "/api/sidecars/instances/{instanceId}/connect",
      "/api/tenants/{tenantId}/sidecars",
      "/api/tenants/{tenantId}/sidecars/{sidecarId}",
      "/api/tenants/{tenantId}/sidecars/{sidecarId}/heartbeat",
    ]);
    const created = doc.paths["/api/tenants/{tenantId}/sidecars"].post.responses["201"];
    expect(created.content["application/json"].schema.$ref).toBe("#/components/schemas/CreatedSidecar");
    expect(Object.keys(doc.components.schemas.Sidecar.properties)).not.toContain("secret");
    // The WebSocket upgrades are described too.
    expect(Object.keys(doc.paths["/api/sidecars/instances/{instanceId}/connect"].get.responses)).toEqual(
      expect.arrayContaining(["101", "401", "403", "410", "426"]),
    );
  });
});

describe("sidecar authentication and liveness", () => {
  it("authenticates by secret and nothing else", async () => {
    const t = await createTenant();
    const { id, secret } = await register(t);
    expect((await authenticateSidecar(db, secret))?.id).toBe(id);
    expect(await authenticateSidecar(db, `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`)).toBeNull();
    expect(await authenticateSidecar(db, secret.slice(4))).toBeNull();
    expect(await authenticateSidecar(db, "")).toBeNull();
    expect(await authenticateSidecar(db, `ahs_${"x".repeat(1000)}`)).toBeNull();
  });

  it("marks a sidecar online and offline, keeping the last heartbeat", async () => {
    const t = await createTenant();
    const { row } = await createSidecar(db, t.id, { name: unique("host-") });
    const at = new Date(Date.now() - 1000);
    await markSidecarOnline(db, row.id, at);
    expect(await storedRow(row.id)).toMatchObject({ status: "online", lastHeartbeat: at });
    const later = new Date();
    await markSidecarOffline(db, row.id, later);
    expect(await storedRow(row.id)).toMatchObject({ status: "offline", lastHeartbeat: at, updatedAt: later });
  });
});

describe("pickSidecar", () => {
  async function online(t: TestTenant, capacity: number, live: number, heartbeat = new Date()) {
    const { row } = await createSidecar(db, t.id, { name: unique("host-"), capacity });
    await recordHeartbeat(db, t.id, row.id, heartbeat);
    if (live > 0) await addInstances(t, row.id, Array(live).fill("running"));
    return row.id;
  }

  it("picks the least loaded sidecar relative to its capacity", async () => {
    const t = await createTenant();
    await online(t, 4, 2); // 50 %
    const roomy = await online(t, 10, 3); // 30 %, although it runs more instances
    await online(t, 2, 1); // 50 %
    await addInstances(t, roomy, ["stopped", "stopped", "stopped"]); // stopped instances are no load
    const picked = await pickSidecar(db, t.id, new Date());
    expect(picked).toMatchObject({ id: roomy, liveInstances: 3, capacity: 10 });
    const idle = await online(t, 1, 0);
    expect((await pickSidecar(db, t.id, new Date()))?.id).toBe(idle);
  });

  it("excludes stale, offline and full sidecars, and returns null when none is left", async () => {
    const t = await createTenant();
    const now = new Date();
    await online(t, 8, 0, new Date(now.getTime() - SIDECAR_TIMEOUT_MS - 1));
    const offline = await online(t, 8, 0);
    await markSidecarOffline(db, offline, now);
    await online(t, 2, 2);
    await createSidecar(db, t.id, { name: unique("never-") });
    expect(await pickSidecar(db, t.id, now)).toBeNull();

    const edge = await online(t, 3, 2, new Date(now.getTime() - SIDECAR_TIMEOUT_MS));
    expect((await pickSidecar(db, t.id, now))?.id).toBe(edge);
    await addInstances(t, edge, ["deployed"]);
    expect(await pickSidecar(db, t.id, now)).toBeNull();
  });

  it("never picks another tenant's sidecar", async () => {
    const mine = await createTenant();
    const theirs = await createTenant();
    await online(theirs, 100, 0);
    expect(await pickSidecar(db, mine.id, new Date())).toBeNull();
    const own = await online(mine, 1, 0);
    expect((await pickSidecar(db, mine.id, new Date()))?.id).toBe(own);
    expect((await pickSidecar(db, theirs.id, new Date()))?.id).not.toBe(own);
  });
});
