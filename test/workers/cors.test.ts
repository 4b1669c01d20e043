/**
 * CORS: the JSON API answers browsers on the origins of `AUTH_TRUSTED_ORIGINS`, with credentials; other
 * origins, git smart HTTP and the sidecar channels get no allow-origin header. The app runs with an env
 * that trusts one console origin (the pool's own env trusts none).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { signUp } from "./support/api";

const CONSOLE = "https://console.example.test";
const app = createApp();
const trusting = { ...env, AUTH_TRUSTED_ORIGINS: `https://other.example.test, ${CONSOLE}` };

const call = (path: string, init: RequestInit) => app.request(path, init, trusting);
const preflight = (path: string, origin: string, method = "POST") =>
  call(path, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": "content-type, idempotency-key",
    },
  });

describe("CORS", () => {
  it("answers a preflight from a trusted origin with 204 and the allow headers", async () => {
    const res = await preflight("/api/tenants/tnt_0123456789abcdef0123456789abcdef/grants", CONSOLE);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(CONSOLE);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-methods")).toContain("PATCH");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("idempotency-key");
    expect(res.headers.get("vary")).toContain("Origin");
  });

  it("gives another origin no allow-origin header", async () => {
    const res = await preflight("/api/me", "https://evil.example");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const get = await call("/api/me", { headers: { origin: "https://evil.example" } });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("trusts no origin when none is configured", async () => {
    const res = await app.request("/api/me", { method: "OPTIONS", headers: { origin: CONSOLE } }, env);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("puts the header on normal responses, errors included, and exposes the request id", async () => {
    const user = await signUp();
    const ok = await call("/api/me", { headers: { origin: CONSOLE, authorization: `Bearer ${user.token}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(CONSOLE);
    expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
    expect(ok.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-request-id");
    expect(ok.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("ratelimit-policy");
    const anonymous = await call("/api/me", { headers: { origin: CONSOLE } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("access-control-allow-origin")).toBe(CONSOLE);
  });

  it("leaves git smart HTTP and the sidecar channels alone", async () => {
    const git = await preflight(
      "/api/tenants/tnt_0123456789abcdef0123456789abcdef/assets/skill/demo.git/git-upload-pack",
      CONSOLE,
    );
    expect(git.headers.get("access-control-allow-origin")).toBeNull();
    expect(git.status).not.toBe(204);
    for (const path of ["/api/sidecars/connect", "/api/sidecars/instances/ins_0123/connect"]) {
      const res = await preflight(path, CONSOLE, "GET");
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
  });
});
