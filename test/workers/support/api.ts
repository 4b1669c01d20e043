/**
 * Drives the real Worker entry (`exports.default.fetch`): the same middleware, routes, D1 and auth a
 * deployed hub runs. Every helper goes through HTTP; nothing is inserted behind the API's back unless
 * a test says so (rows of resources whose routes belong to later work).
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";

export type ApiResponse<T = any> = { status: number; body: T; headers: Headers };

export type RequestOptions = {
  method?: string;
  body?: unknown;
  token?: string | undefined;
  headers?: Record<string, string>;
};

export async function api<T = any>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers = new Headers(options.headers);
  if (options.token) headers.set("authorization", `Bearer ${options.token}`);
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const res = await exports.default.fetch(
    new Request(`http://hub.test${path}`, { method: options.method ?? (body ? "POST" : "GET"), headers, body }),
  );
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Asserts the error envelope, the status and the code; returns the error for further checks. */
export function expectError(res: ApiResponse, status: number, code: string) {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { error: { code } } });
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.requestId).toBe(res.headers.get("x-request-id"));
  return res.body.error as { code: string; message: string; details?: any };
}

export const unique = (prefix = "x") => `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;

export type TestUser = { token: string; userId: string; email: string; password: string; name: string };

export async function signUp(name = "Test User"): Promise<TestUser> {
  const email = `${unique("user")}@example.test`;
  const password = "correct horse battery";
  const res = await api("/api/auth/sign-up/email", { body: { name, email, password } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const token = res.headers.get("set-auth-token");
  expect(token).toBeTruthy();
  return { token: token as string, userId: res.body.user.id, email, password, name };
}

export type TestTenant = {
  id: string;
  slug: string;
  owner: TestUser;
  ownerPrincipalId: string;
  roles: Record<string, string>;
};

export async function createTenant(owner?: TestUser, extra: Record<string, unknown> = {}): Promise<TestTenant> {
  const user = owner ?? (await signUp("Owner"));
  const slug = unique("t");
  const res = await api("/api/tenants", { token: user.token, body: { name: `Tenant ${slug}`, slug, ...extra } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const roles = await api(`/api/tenants/${res.body.id}/roles`, { token: user.token });
  const me = await api(`/api/tenants/${res.body.id}/principals?kind=user`, { token: user.token });
  return {
    id: res.body.id,
    slug,
    owner: user,
    ownerPrincipalId: me.body.data[0].id,
    roles: Object.fromEntries(roles.body.data.map((r: { name: string; id: string }) => [r.name, r.id])),
  };
}

export type TestMember = TestUser & { principalId: string };

/** Signs up a new user and makes them an active member of `tenant` with `roleName` (or no role). */
export async function addMember(tenant: TestTenant, roleName: string | null = "member"): Promise<TestMember> {
  const user = await signUp(`Member ${roleName ?? "norole"}`);
  const invite = await api(`/api/tenants/${tenant.id}/members/invite`, {
    token: tenant.owner.token,
    body: roleName ? { email: user.email, roleId: tenant.roles[roleName] } : { email: user.email },
  });
  expect(invite.status, JSON.stringify(invite.body)).toBe(201);
  const accepted = await api(`/api/me/invitations/${invite.body.id}/accept`, { method: "POST", token: user.token });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
  return { ...user, principalId: invite.body.id };
}
