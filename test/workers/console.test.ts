/**
 * The console and `/docs` come from the Worker's static assets (dist/assets, built before the tests):
 * a screen's address answers with the console's page, a missing script stays a 404, and the API
 * reference loads its script from the hub itself.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";

const app = createApp();

describe("the console", () => {
  it("`/` sends a browser to the console", async () => {
    const res = await app.request("/", {}, env);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/console/");
  });

  it("a screen's address answers with the console's page, so reloads and shared links work", async () => {
    const res = await app.request("/console/t/tnt_0123456789abcdef0123456789abcdef/instances/ins_1", {}, env);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    // Only the hub's own scripts, and no framing.
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await res.text();
    expect(html).toContain('<div id="root"></div>');
    expect(html).toMatch(/<script type="module" crossorigin src="\/console\/assets\/index-[\w-]+\.js">/);
  });

  it("a missing script is a 404 in the error envelope, not the page", async () => {
    const res = await app.request("/console/assets/index-missing.js", {}, env);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({
      error: { code: "not_found", message: "No asset at /console/assets/index-missing.js" },
    });
  });
});

describe("/docs", () => {
  it("loads Scalar from the hub's own assets, without web fonts", async () => {
    const res = await app.request("/docs", {}, env);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<script src="/docs/scalar/standalone.js"');
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[^"'\s]*\.(js|css)/);
    expect(html).not.toContain("fonts.scalar.com");
    const script = await env.ASSETS.fetch("http://hub.test/docs/scalar/standalone.js");
    expect(script.status).toBe(200);
    expect(Number(script.headers.get("content-length") ?? (await script.arrayBuffer()).byteLength)).toBeGreaterThan(
      1_000_000,
    );
  });
});
