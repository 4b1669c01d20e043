/**
 * D1 read replication (docs/http-conventions.md, "Read replication"): every JSON API response carries the
 * bookmark of the request's D1 session in `X-D1-Bookmark`; a client that sends it back never reads older
 * data than it wrote. Local D1 has no replicas, but it issues and advances real bookmarks, so the tests
 * check what a client sees: the header, its order, the data, and the refusal of a malformed one.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { RequestD1 } from "../../src/db/request-d1";
import { api, createTenant, expectError, type TestTenant } from "./support/api";
import { instancesOf, launch, type Runtime, SLOW, setUpRuntime } from "./support/runtime";
import { TestSidecar } from "./support/test-sidecar";

const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

const bookmarkOf = (res: { headers: Headers }) => {
  const bookmark = res.headers.get("x-d1-bookmark");
  expect(bookmark).toMatch(BOOKMARK);
  return bookmark as string;
};

describe("X-D1-Bookmark", () => {
  let t: TestTenant;
  let base: string;

  beforeAll(async () => {
    t = await createTenant();
    base = `/api/tenants/${t.id}`;
  });

  it("comes with reads and writes, errors included, and never goes back", async () => {
    const read = bookmarkOf(await api(`${base}/roles`, { token: t.owner.token }));
    const write = await api(`${base}/wallets`, {
      token: t.owner.token,
      headers: { "x-d1-bookmark": read },
      body: { name: "Bookmarked", backendType: "credits", currency: "USD" },
    });
    expect(write.status, JSON.stringify(write.body)).toBe(201);
    expect(bookmarkOf(write) > read).toBe(true);
    const notFound = await api(`${base}/wallets/wlt_0123456789abcdef0123456789abcdef`, {
      token: t.owner.token,
      headers: { "x-d1-bookmark": bookmarkOf(write) },
    });
    expectError(notFound, 404, "not_found");
    expect(bookmarkOf(notFound) >= bookmarkOf(write)).toBe(true);
  });

  it("sent with the next read, returns what the write wrote", async () => {
    const created = await api(`${base}/wallets`, {
      token: t.owner.token,
      body: { name: "Read your writes", backendType: "credits", currency: "USD" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const read = await api(`${base}/wallets/${created.body.id}`, {
      token: t.owner.token,
      headers: { "x-d1-bookmark": bookmarkOf(created) },
    });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body).toMatchObject({ id: created.body.id, name: "Read your writes" });
    expect(bookmarkOf(read) >= bookmarkOf(created)).toBe(true);
  });

  it("covers sign-up: better-auth's writes run in the request's session too", async () => {
    const email = `bookmark-${crypto.randomUUID()}@example.test`;
    const signUp = await api("/api/auth/sign-up/email", {
      body: { name: "Bookmark", email, password: "correct horse battery" },
    });
    expect(signUp.status, JSON.stringify(signUp.body)).toBe(200);
    const me = await api("/api/me", {
      token: signUp.headers.get("set-auth-token") ?? "",
      headers: { "x-d1-bookmark": bookmarkOf(signUp) },
    });
    expect(me.status, JSON.stringify(me.body)).toBe(200);
    expect(me.body.email).toBe(email);
  });

  it("takes an empty header as none", async () => {
    const res = await api(`${base}/roles`, { token: t.owner.token, headers: { "x-d1-bookmark": "" } });
    expect(res.status).toBe(200);
    bookmarkOf(res);
  });

  it.each([
    ["not a bookmark", "garbage"],
    ["a constraint, not a bookmark", "first-primary"],
    ["upper-case hex", "0000000A-00000002-00004E2F-0A83EA2FCEEBC654DE0640C422BE4653"],
    ["a group too short", "00000001-00000002-00004e2f-0a83ea2fceebc654de0640c422be465"],
    ["a trailing extra", "00000001-00000002-00004e2f-0a83ea2fceebc654de0640c422be4653-1"],
    ["SQL", "'; drop table tenant; --"],
    ["a long value", "0".repeat(4096)],
  ])("refuses %s with 400 invalid_bookmark, reads and writes alike", async (_, bookmark) => {
    for (const [path, body] of [
      [`${base}/roles`, undefined],
      [`${base}/wallets`, { name: "Never", backendType: "credits", currency: "USD" }],
    ] as const) {
      const res = await api(path, { token: t.owner.token, body, headers: { "x-d1-bookmark": bookmark } });
      const error = expectError(res, 400, "invalid_bookmark");
      expect(error.message).toBe("X-D1-Bookmark must be a bookmark an earlier response carried");
      expect(res.headers.get("x-d1-bookmark")).toBeNull();
    }
    const wallets = await api(`${base}/wallets`, { token: t.owner.token });
    expect(wallets.body.data.map((w: { name: string }) => w.name)).not.toContain("Never");
  });

  it("refuses a malformed one before authentication: every query runs in the session it names", async () => {
    expectError(await api("/api/me", { headers: { "x-d1-bookmark": "garbage" } }), 400, "invalid_bookmark");
  });

  it("is exposed to, and accepted from, a trusted browser origin", async () => {
    const origin = "https://console.example.test";
    const app = createApp();
    const trusting = { ...env, AUTH_TRUSTED_ORIGINS: origin };
    const preflight = await app.request(
      `${base}/roles`,
      {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "GET",
          "access-control-request-headers": "authorization, x-d1-bookmark",
        },
      },
      trusting,
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("x-d1-bookmark");
    const res = await app.request(
      `${base}/roles`,
      { headers: { origin, authorization: `Bearer ${t.owner.token}` } },
      trusting,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-d1-bookmark");
    bookmarkOf(res);
  });

  it("is no part of git smart HTTP (git carries no bookmark) nor of anything outside the JSON API", async () => {
    const git = await api(`${base}/agents/instances/ins_0123456789abcdef0123456789abcdef/state.git/info/refs`, {
      headers: { "x-d1-bookmark": "garbage" },
    });
    expect(git.status).toBe(401);
    expect(git.headers.get("x-d1-bookmark")).toBeNull();
    const status = await api("/status");
    expect(status.status).toBe(200);
    expect(status.headers.get("x-d1-bookmark")).toBeNull();
  });
});

describe("writes a Durable Object makes for a request", () => {
  /** A write through the plain binding, as an instance object makes one; its bookmark. */
  const outsideWrite = async (tenantId: string) => {
    const session = env.DB.withSession("first-primary");
    await session.prepare("update tenant set updated_at = ? where id = ?").bind(Date.now(), tenantId).run();
    return session.getBookmark() as string;
  };

  it("are covered by a mutating request's bookmark once it calls the object", async () => {
    const t = await createTenant();
    const unaware = new RequestD1(env.DB, "first-primary");
    await unaware.prepare("select 1").run();
    const before = await unaware.bookmark(true);
    expect(before).toMatch(BOOKMARK);
    const written = await outsideWrite(t.id);
    // Without being told, the session's bookmark predates the write.
    expect(((await unaware.bookmark(true)) as string) < written).toBe(true);

    const told = new RequestD1(env.DB, "first-primary");
    await told.prepare("select 1").run();
    told.writesElsewhere();
    const alsoWritten = await outsideWrite(t.id);
    expect(((await told.bookmark(true)) as string) >= alsoWritten).toBe(true);
  });

  it("leave exec and dump out: their writes would bypass the session", async () => {
    const db = new RequestD1(env.DB, "first-unconstrained");
    await expect(db.exec()).rejects.toThrow(/bypasses the request's D1 session/);
    await expect(db.dump()).rejects.toThrow(/not available/);
  });
});

describe("mail stored by the instance object", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("is in the next read that sends the send's bookmark", async () => {
    const { instance } = await launch(r, sidecar);
    const sent = await api(`${instancesOf(r.t.id)}/${instance.id}/mail`, {
      token: r.token,
      body: { content: "remember me" },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    const listed = await api(`${instancesOf(r.t.id)}/${instance.id}/mail`, {
      token: r.token,
      headers: { "x-d1-bookmark": bookmarkOf(sent) },
    });
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((m: { id: string }) => m.id)).toContain(sent.body.id);
  });
});
