/** Sign-up, sign-in, sessions by cookie and by bearer token, sign-out; errors in the hub envelope. */
import { describe, expect, it } from "vitest";
import { api, expectError, signUp, unique } from "./support/api";

describe("auth", () => {
  it("signs up, returns a bearer token, and that token identifies the user", async () => {
    const user = await signUp("Ada Lovelace");
    const me = await api("/api/me", { token: user.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: user.userId, name: "Ada Lovelace", email: user.email, image: null });
    expect(me.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("signs in with email and password; the session cookie works too", async () => {
    const user = await signUp();
    const res = await api("/api/auth/sign-in/email", { body: { email: user.email, password: user.password } });
    expect(res.status).toBe(200);
    const token = res.headers.get("set-auth-token");
    expect(token).toBeTruthy();
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
    expect(cookie).toContain("session_token=");
    const byCookie = await api("/api/me", { headers: { cookie } });
    expect(byCookie.status).toBe(200);
    expect(byCookie.body.id).toBe(user.userId);
    const byBearer = await api("/api/me", { token: token as string });
    expect(byBearer.body.id).toBe(user.userId);
  });

  it("rejects a wrong password in the error envelope", async () => {
    const user = await signUp();
    const res = await api("/api/auth/sign-in/email", { body: { email: user.email, password: "wrong password!" } });
    const error = expectError(res, 401, "invalid_email_or_password");
    expect(error.message).toMatch(/invalid email or password/i);
  });

  it("rejects a duplicate email and a short password without creating anything", async () => {
    const user = await signUp();
    const dup = await api("/api/auth/sign-up/email", {
      body: { name: "Again", email: user.email, password: "another password" },
    });
    expect(expectError(dup, 409, "conflict").message).toMatch(/already exists/i);
    const signIn = await api("/api/auth/sign-in/email", { body: { email: user.email, password: user.password } });
    expect(signIn.status).toBe(200);
    const short = await api("/api/auth/sign-up/email", {
      body: { name: "Short", email: `${unique()}@example.test`, password: "short" },
    });
    expectError(short, 400, "password_too_short");
  });

  it("answers anonymous and forged callers with 401", async () => {
    expectError(await api("/api/me"), 401, "unauthorized");
    expectError(await api("/api/me", { token: "not-a-session-token" }), 401, "unauthorized");
    expectError(
      await api("/api/me", { headers: { cookie: "better-auth.session_token=forged.value" } }),
      401,
      "unauthorized",
    );
  });

  it("signing out ends the session", async () => {
    const user = await signUp();
    const out = await api("/api/auth/sign-out", { method: "POST", token: user.token });
    expect(out.status).toBe(200);
    expectError(await api("/api/me", { token: user.token }), 401, "unauthorized");
  });
});

describe("auth from scripts and browsers", () => {
  const body = (email: string) => ({ name: "Script", email, password: "correct horse battery" });

  it("lets a script sign up with Node-fetch style metadata headers and no Origin", async () => {
    const res = await api("/api/auth/sign-up/email", {
      body: body(`${unique()}@example.test`),
      headers: { "sec-fetch-mode": "cors", "sec-fetch-site": "same-origin" },
    });
    expect(res.status).toBe(200);
  });

  it("still refuses a browser request from an untrusted origin", async () => {
    const res = await api("/api/auth/sign-up/email", {
      body: body(`${unique()}@example.test`),
      headers: { origin: "https://evil.example", "sec-fetch-mode": "cors", "sec-fetch-site": "cross-site" },
    });
    expectError(res, 403, "invalid_origin");
  });
});
