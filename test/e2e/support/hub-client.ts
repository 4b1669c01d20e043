/**
 * A small REST client for end-to-end tests: everything goes through the running hub's HTTP API, as a
 * script of a user would.
 */
import { expect } from "vitest";

export type Session = { token: string; userId: string; email: string };

export function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

export function client(hubUrl: string) {
  async function call<T = any>(method: string, path: string, token?: string, body?: unknown) {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${hubUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  async function ok<T = any>(method: string, path: string, token?: string, body?: unknown): Promise<T> {
    const res = await call<T>(method, path, token, body);
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
    return res.body;
  }

  async function signUp(name = "E2E User"): Promise<Session> {
    const email = `${uniqueName("e2e")}@example.test`;
    const res = await fetch(`${hubUrl}/api/auth/sign-up/email`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, email, password: "correct horse battery" }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { user: { id: string } };
    return { token: res.headers.get("set-auth-token") as string, userId: body.user.id, email };
  }

  async function createTenant(owner: Session): Promise<{ id: string }> {
    const slug = uniqueName("t");
    return ok("POST", "/api/tenants", owner.token, { name: `Tenant ${slug}`, slug });
  }

  /** Mints a personal git token for `resource` in `tenantId`; returns the secret. */
  async function gitToken(
    session: Session,
    tenantId: string,
    resource: string,
    options: { actions?: string[]; refPattern?: string } = {},
  ): Promise<string> {
    const minted = await ok<{ secret: string }>("POST", "/api/me/git-tokens", session.token, {
      name: uniqueName("token"),
      tenantId,
      resource,
      refPattern: options.refPattern ?? "refs/**",
      actions: options.actions ?? ["can_read", "can_push"],
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    return minted.secret;
  }

  return { call, ok, signUp, createTenant, gitToken };
}
