/**
 * Rate limits per tenant, per principal, per user and per address for sign-up and sign-in, answered with
 * 429 and the IETF headers. The pool's env has every limit off; these tests pass small limits and a short
 * window in the env of `createApp().request`. Each test counts against keys of its own (new tenants,
 * users and addresses), as the counters are shared by the whole run.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { addMember, api, createTenant, expectError, signUp, unique } from "./support/api";

const app = createApp();
const WINDOW = 2;

type Limits = { tenant?: number; principal?: number; auth?: number; failures?: number; failureWindow?: number };

function limited(limits: Limits) {
  const vars = {
    ...env,
    RATE_LIMIT_WINDOW_SECONDS: String(WINDOW),
    RATE_LIMIT_TENANT_PER_MINUTE: String(limits.tenant ?? 100),
    RATE_LIMIT_PRINCIPAL_PER_MINUTE: String(limits.principal ?? 100),
    RATE_LIMIT_AUTH_PER_MINUTE: String(limits.auth ?? 100),
    RATE_LIMIT_SIGN_IN_FAILURES: String(limits.failures ?? 100),
    RATE_LIMIT_SIGN_IN_FAILURE_WINDOW_SECONDS: String(limits.failureWindow ?? 600),
  };
  return async (path: string, init: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) => {
    const headers = new Headers(init.headers);
    if (init.token) headers.set("authorization", `Bearer ${init.token}`);
    if (init.body !== undefined) headers.set("content-type", "application/json");
    const res = await app.request(
      path,
      {
        method: init.body === undefined ? "GET" : "POST",
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      },
      vars,
    );
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
}

/** `"name";r=2;t=1` → { name, r, t }. */
function rateLimit(headers: Headers) {
  const match = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(headers.get("ratelimit") ?? "");
  expect(match, headers.get("ratelimit") ?? "no RateLimit header").not.toBeNull();
  const [, name, r, t] = match as RegExpExecArray;
  return { name, r: Number(r), t: Number(t) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const address = () => `203.0.113.${Math.floor(Math.random() * 250) + 1}-${unique()}`;

describe("rate limits", () => {
  it("lets a principal make N requests with decreasing r, refuses the next with 429, and recovers", async () => {
    const t = await createTenant();
    const call = limited({ principal: 3 });
    const roles = `/api/tenants/${t.id}/roles`;
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(roles, { token: t.owner.token });
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-policy")).toBe(`"tenant";q=100;w=${WINDOW}, "principal";q=3;w=${WINDOW}`);
      const limit = rateLimit(res.headers);
      expect(limit.name).toBe("principal");
      expect(limit.t).toBeGreaterThanOrEqual(1);
      expect(limit.t).toBeLessThanOrEqual(WINDOW);
      remaining.push(limit.r);
    }
    expect(remaining).toEqual([2, 1, 0]);

    const refused = await call(roles, { token: t.owner.token });
    expectError(refused, 429, "rate_limited");
    expect(refused.body.error.details).toMatchObject({ policy: "principal", limit: 3, windowSeconds: WINDOW });
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW);
    expect(rateLimit(refused.headers)).toMatchObject({ name: "principal", r: 0, t: retryAfter });
    expect(refused.headers.get("ratelimit-policy")).toContain('"principal";q=3');

    // Another principal of the same tenant, and another tenant, have their own counters.
    const member = await addMember(t);
    const theirs = await call(roles, { token: member.token });
    expect(theirs.status).toBe(200);
    expect(rateLimit(theirs.headers)).toMatchObject({ name: "principal", r: 2 });
    const other = await createTenant();
    expect((await call(`/api/tenants/${other.id}/roles`, { token: other.owner.token })).status).toBe(200);

    await sleep(retryAfter * 1000 + 100);
    const again = await call(roles, { token: t.owner.token });
    expect(again.status).toBe(200);
    expect(rateLimit(again.headers)).toMatchObject({ name: "principal", r: 2 });
  });

  it("limits a tenant across its principals, leaving other tenants alone", async () => {
    const t = await createTenant();
    const member = await addMember(t);
    const call = limited({ tenant: 3 });
    const roles = `/api/tenants/${t.id}/roles`;
    expect((await call(roles, { token: t.owner.token })).status).toBe(200);
    expect((await call(roles, { token: member.token })).status).toBe(200);
    const last = await call(roles, { token: t.owner.token });
    expect(last.status).toBe(200);
    expect(rateLimit(last.headers)).toMatchObject({ name: "tenant", r: 0 });
    const refused = await call(roles, { token: member.token });
    expectError(refused, 429, "rate_limited");
    expect(refused.body.error.details.policy).toBe("tenant");
    expect(refused.headers.get("retry-after")).toBeTruthy();

    const other = await createTenant();
    const theirs = await call(`/api/tenants/${other.id}/roles`, { token: other.owner.token });
    expect(theirs.status).toBe(200);
    expect(rateLimit(theirs.headers)).toMatchObject({ name: "tenant", r: 2 });
  });

  it("limits a signed-in user on routes outside a tenant; anonymous requests are not counted", async () => {
    const user = await signUp();
    const call = limited({ principal: 2 });
    const first = await call("/api/me", { token: user.token });
    expect(first.headers.get("ratelimit-policy")).toBe(`"user";q=2;w=${WINDOW}`);
    expect(rateLimit(first.headers)).toMatchObject({ name: "user", r: 1 });
    expect((await call("/api/me", { token: user.token })).status).toBe(200);
    expectError(await call("/api/me", { token: user.token }), 429, "rate_limited");
    expect((await call("/api/me", { token: (await signUp()).token })).status).toBe(200);

    const anonymous = await call("/api/me");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("ratelimit")).toBeNull();
  });

  it("limits sign-up and sign-in per client address", async () => {
    const call = limited({ auth: 2 });
    const ip = address();
    const user = { name: "Rate", email: `${unique("user")}@example.test`, password: "correct horse battery" };
    const signUpRes = await call("/api/auth/sign-up/email", { body: user, headers: { "cf-connecting-ip": ip } });
    expect(signUpRes.status).toBe(200);
    expect(signUpRes.headers.get("ratelimit-policy")).toContain(`"address";q=2;w=${WINDOW}`);
    expect(rateLimit(signUpRes.headers)).toMatchObject({ name: "address", r: 1 });
    const signIn = { email: user.email, password: user.password };
    expect((await call("/api/auth/sign-in/email", { body: signIn, headers: { "cf-connecting-ip": ip } })).status).toBe(
      200,
    );
    const refused = await call("/api/auth/sign-in/email", { body: signIn, headers: { "cf-connecting-ip": ip } });
    expectError(refused, 429, "rate_limited");
    expect(refused.body.error.details.policy).toBe("address");
    expect(refused.headers.get("retry-after")).toBeTruthy();

    // Another address, here the first of X-Forwarded-For, is not affected.
    const forwarded = await call("/api/auth/sign-in/email", {
      body: signIn,
      headers: { "x-forwarded-for": `${address()}, ${ip}` },
    });
    expect(forwarded.status).toBe(200);
    expect(rateLimit(forwarded.headers)).toMatchObject({ name: "address", r: 1 });
  });

  it("counts failed sign-ins in a stricter, longer window that refuses even the right password", async () => {
    const user = await signUp();
    const call = limited({ auth: 10, failures: 2, failureWindow: 600 });
    const headers = { "cf-connecting-ip": address() };
    const wrong = { email: user.email, password: "wrong password!" };
    const first = await call("/api/auth/sign-in/email", { body: wrong, headers });
    expectError(first, 401, "invalid_email_or_password");
    expect(first.headers.get("ratelimit-policy")).toBe(`"address";q=10;w=${WINDOW}, "sign-in-failures";q=2;w=600`);
    expect(rateLimit(first.headers)).toMatchObject({ name: "sign-in-failures", r: 1 });
    const second = await call("/api/auth/sign-in/email", { body: wrong, headers });
    expect(second.status).toBe(401);
    expect(rateLimit(second.headers)).toMatchObject({ name: "sign-in-failures", r: 0 });

    const right = { email: user.email, password: user.password };
    const refused = await call("/api/auth/sign-in/email", { body: right, headers });
    expectError(refused, 429, "rate_limited");
    expect(refused.body.error.details.policy).toBe("sign-in-failures");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(WINDOW);

    // Another address signs in; its failure window is untouched (and, with less left, the one shown).
    const elsewhere = await call("/api/auth/sign-in/email", {
      body: right,
      headers: { "cf-connecting-ip": address() },
    });
    expect(elsewhere.status).toBe(200);
    expect(rateLimit(elsewhere.headers)).toMatchObject({ name: "sign-in-failures", r: 2, t: 600 });
  });

  it("does not limit git smart HTTP", async () => {
    const t = await createTenant();
    const asset = await api(`/api/tenants/${t.id}/assets`, {
      token: t.owner.token,
      body: { kind: "repo", name: unique("repo-") },
    });
    expect(asset.status, JSON.stringify(asset.body)).toBe(201);
    const token = await api("/api/me/git-tokens", {
      token: t.owner.token,
      body: {
        name: unique("tok"),
        tenantId: t.id,
        resource: `asset:${asset.body.id}`,
        refPattern: "refs/**",
        actions: ["can_read"],
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    expect(token.status, JSON.stringify(token.body)).toBe(201);
    const call = limited({ tenant: 1, principal: 1 });
    // The tenant and the principal spend their one request on the JSON API.
    expect((await call(`/api/tenants/${t.id}/roles`, { token: t.owner.token })).status).toBe(200);
    expectError(await call(`/api/tenants/${t.id}/roles`, { token: t.owner.token }), 429, "rate_limited");
    const basic = { authorization: `Basic ${btoa(`git:${token.body.secret}`)}` };
    for (let i = 0; i < 3; i++) {
      const res = await app.request(
        `${asset.body.cloneUrl}/info/refs?service=git-upload-pack`,
        { headers: basic },
        { ...env, RATE_LIMIT_TENANT_PER_MINUTE: "1", RATE_LIMIT_PRINCIPAL_PER_MINUTE: "1" },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toBeNull();
      expect(res.headers.get("ratelimit-policy")).toBeNull();
      await res.arrayBuffer();
    }
  });
});
