/**
 * D1 round trips per authorized request, counted over the real local D1 (a batch is one round trip): the
 * caller, the tenant, the caller's principal and its grants come in one batch, whatever the credential
 * (signed bearer token, bare session token, session cookie, agent token). An authorized `GET …/roles` is
 * that batch plus the route's own listing: 2. Off tenant routes the caller alone is 1.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { addMember, api, createTenant, type TestTenant } from "./support/api";
import { countingD1 } from "./support/counting-d1";
import { launch, ok, type Runtime, SLOW, setUpRuntime, tenantBase } from "./support/runtime";
import { TestSidecar } from "./support/test-sidecar";

const app = createApp();
const counted = countingD1(env.DB);
const countedEnv = { ...env, DB: counted.db };
const figures: string[] = [];

/**
 * The round trips of one request, and what each was; the response must be `status`, and its
 * `Server-Timing` must report the same count.
 */
async function roundTrips(
  label: string,
  path: string,
  headers: Record<string, string>,
  status = 200,
  init: RequestInit = {},
  /** What `Server-Timing` reports: the answering attempt's round trips (all of them, unless resent). */
  reported?: number,
) {
  counted.reset();
  const res = await app.request(path, { ...init, headers }, countedEnv);
  expect(res.status, await res.clone().text()).toBe(status);
  const trips = counted.roundTrips();
  figures.push(`${label}: ${trips}`);
  expect(res.headers.get("server-timing")).toMatch(
    new RegExp(`(^|,\\s*)d1;dur=\\d+(\\.\\d+)?;desc="${reported ?? trips} round trips?"`),
  );
  return counted.statements();
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

// The figures, for the record (`npm run bench:authz:http` measures the time they take).
afterAll(() => console.log(`D1 round trips per request — ${figures.join("; ")}`));

describe("D1 round trips per authorized request", () => {
  let t: TestTenant;
  let cookie: string;

  /** The `Cookie` header of a browser signed in as the owner. */
  const signInCookie = async (rememberMe: boolean) => {
    const signIn = await api("/api/auth/sign-in/email", {
      body: { email: t.owner.email, password: t.owner.password, rememberMe },
    });
    return signIn.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
  };

  beforeAll(async () => {
    t = await createTenant();
    cookie = await signInCookie(true);
  });

  /** A new session of the owner: a credential this isolate has not seen yet. */
  const freshToken = async () => {
    const signIn = await api("/api/auth/sign-in/email", {
      body: { email: t.owner.email, password: t.owner.password },
    });
    return signIn.headers.get("set-auth-token") ?? "";
  };

  it("a tenant route: one batch for caller, tenant, principal and grants, then the route's query", async () => {
    const roles = `/api/tenants/${t.id}/roles`;
    const signed = await roundTrips("GET …/roles, signed bearer", roles, bearer(await freshToken()));
    expect(signed).toHaveLength(2);
    expect(signed[0]).toBe("batch of 5");
    expect(signed[1]).toMatch(/from "role"/);
    expect(await roundTrips("GET …/roles, cookie", roles, { cookie: await signInCookie(true) })).toEqual(signed);
    const dontRemember = await signInCookie(false);
    expect(await roundTrips("GET …/roles, cookie, not remembered", roles, { cookie: dontRemember })).toEqual(signed);
  });

  it("a read repeated by the same caller: one round trip, the check carried with the route's query", async () => {
    const roles = `/api/tenants/${t.id}/roles`;
    const token = await freshToken();
    const first = await app.request(roles, { headers: bearer(token) }, countedEnv);
    const again = await roundTrips("GET …/roles again, signed bearer", roles, bearer(token));
    expect(again).toEqual(["batch of 6"]);
    const bareToken = (token.split(".")[0] ?? "") as string;
    expect(await roundTrips("GET …/roles again, bare bearer", roles, bearer(bareToken))).toEqual(again);
    // The same answer as the first time.
    const res = await app.request(roles, { headers: bearer(token) }, countedEnv);
    expect(await res.json()).toEqual(await first.json());
    // A route that reads nothing itself: the check alone.
    expect(await roundTrips("GET …/{tenantId} again", `/api/tenants/${t.id}`, bearer(token))).toEqual(["batch of 5"]);
    // Changes are never carried: checked first.
    const created = await roundTrips(
      "POST …/roles",
      roles,
      { ...bearer(token), "content-type": "application/json" },
      201,
      { method: "POST", body: JSON.stringify({ name: `counted-${Date.now()}` }) },
    );
    expect(created[0]).toBe("batch of 5");
  });

  it("a snapshot a change made stale: the carried check refuses it, the request runs again checked first", async () => {
    const member = await addMember(t);
    const roles = `/api/tenants/${t.id}/roles`;
    expect(await roundTrips("GET …/roles, member", roles, bearer(member.token))).toHaveLength(2);
    expect(await roundTrips("GET …/roles again, member", roles, bearer(member.token))).toEqual(["batch of 6"]);
    const assignment = `/api/tenants/${t.id}/principals/${member.principalId}/roles/${t.roles.member}`;
    expect((await api(assignment, { method: "DELETE", token: t.owner.token })).status).toBe(204);
    const logged = vi.spyOn(console, "error");
    try {
      // Carried and refused, then checked alone: the member no longer reads roles.
      const label = "GET …/roles after a change, member";
      const statements = await roundTrips(label, roles, bearer(member.token), 403, {}, 1);
      expect(statements).toEqual(["batch of 6", "batch of 5"]);
      expect(logged).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
    }
  });

  it("refusals cost no more than the batch", async () => {
    const other = await createTenant();
    const token = await freshToken();
    for (const label of ["foreign tenant (404)", "foreign tenant again (404)"]) {
      expect(await roundTrips(label, `/api/tenants/${other.id}/roles`, bearer(token), 404)).toEqual(["batch of 5"]);
    }
    // A token whose signature fails never reaches the database.
    const forged = `${t.owner.token.split(".")[0]}.${"A".repeat(43)}=`;
    expect(await roundTrips("forged signature (401)", `/api/tenants/${t.id}/roles`, bearer(forged), 401)).toEqual([]);
    expect(await roundTrips("anonymous (401)", `/api/tenants/${t.id}/roles`, {}, 401)).toEqual([]);
  });

  it("off tenant routes: the caller alone is one round trip", async () => {
    expect(await roundTrips("GET /api/me", "/api/me", bearer(t.owner.token))).toEqual(["batch of 2"]);
    expect(await roundTrips("GET /api/me, cookie", "/api/me", { cookie })).toEqual(["batch of 2"]);
  });
});

describe("D1 round trips per request with an agent's own token", SLOW, () => {
  let r: Runtime;
  let sidecar: TestSidecar;
  let agentToken: string;

  beforeAll(async () => {
    r = await setUpRuntime();
    sidecar = await TestSidecar.connect(r.secret);
    const { channel } = await launch(r, sidecar);
    const deploy = await channel.log.next("agent.deploy");
    agentToken = deploy.config.apiToken;
    await ok(`${tenantBase(r.t.id)}/grants`, r.token, {
      principalId: deploy.config.principalId,
      resource: "role:*",
      action: "read",
      effect: "allow",
    });
  }, 30_000);

  afterAll(() => sidecar?.close());

  it("is one batch with the tenant's rows too", async () => {
    const statements = await roundTrips("GET …/roles, agent token", `${tenantBase(r.t.id)}/roles`, bearer(agentToken));
    expect(statements).toHaveLength(2);
    expect(statements[0]).toBe("batch of 4");
    expect(statements[1]).toMatch(/from "role"/);
    const again = await roundTrips("GET …/roles again, agent token", `${tenantBase(r.t.id)}/roles`, bearer(agentToken));
    expect(again).toEqual(["batch of 5"]);
  });
});
