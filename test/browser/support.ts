/**
 * What the browser tests share: a tenant made runnable the way `npm start` makes the demo one (the
 * offline echo provider, a wallet with credits, the "Echo" agent, a registered sidecar) with the
 * reference sidecar running, API calls as a user, and the screenshots every main screen leaves in
 * test-results/screens.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, type Page } from "@playwright/test";
import { startSidecar } from "../../scripts/hub.mjs";
import { seedDemoRuntime } from "../../scripts/seed.mjs";

export type Hub = {
  baseUrl: string;
  token: string;
  call<T = any>(method: string, path: string, body?: unknown): Promise<T>;
};

/** Signs in through the API (a bearer token for the test's own calls). */
export async function signIn(baseUrl: string, email: string, password: string): Promise<Hub> {
  const res = await fetch(`${baseUrl}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return hubAs(baseUrl, res.headers.get("set-auth-token") as string);
}

/** API calls with a session's bearer token. */
function hubAs(baseUrl: string, token: string): Hub {
  return {
    baseUrl,
    token,
    async call(method, path, body) {
      const r = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`${method} ${path} answered ${r.status}: ${text}`);
      return text ? JSON.parse(text) : null;
    },
  };
}

/**
 * Signs a new user up through the API: the browser page gets the session cookie, the test the same
 * session as a bearer token.
 */
export async function signUpUser(page: Page, baseUrl: string, name: string) {
  const email = `${name.toLowerCase().replace(/\W+/g, "-")}-${Date.now().toString(36)}@example.test`;
  const password = "correct horse battery";
  const res = await page.request.post("/api/auth/sign-up/email", { data: { name, email, password } });
  expect(res.status(), await res.text()).toBe(200);
  return { email, password, hub: hubAs(baseUrl, res.headers()["set-auth-token"] as string) };
}

/** The demo runtime in a tenant, and the reference sidecar serving it until `stop`. */
export async function runDemoRuntime(hub: Hub, tenantId: string) {
  const stateDir = await mkdtemp(join(tmpdir(), "agent-hub-browser-sidecar-"));
  const runtime = await seedDemoRuntime(hub.baseUrl, { token: hub.token, tenantId }, join(stateDir, "sidecar.json"));
  const sidecar = startSidecar({
    hubUrl: hub.baseUrl,
    secret: runtime.sidecarSecret,
    stateDir: join(stateDir, "state"),
    quiet: true,
  });
  await expect
    .poll(async () => (await hub.call("GET", `/api/tenants/${tenantId}/sidecars/${runtime.sidecarId}`)).status, {
      timeout: 30_000,
      message: "the reference sidecar comes online",
    })
    .toBe("online");
  return {
    ...runtime,
    output: sidecar.output,
    async stop() {
      await sidecar.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** A full-page screenshot of the current screen, kept in test-results/screens/<name>.png. */
export async function screenshot(page: Page, name: string) {
  await page.screenshot({ path: join("test-results", "screens", `${name}.png`), fullPage: true });
}
