/** The running server describes itself: /status, /openapi.json (valid OpenAPI 3.1) and /docs. */
import { readFile } from "node:fs/promises";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, inject, it } from "vitest";
import { consoleTypesOf, consoleTypesPath } from "../../scripts/console-types.mjs";

const hub = inject("hubUrl");

describe("the running hub", () => {
  it("answers /status", async () => {
    const res = await fetch(`${hub}/status`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("serves an OpenAPI 3.1 document that a standard validator accepts", async () => {
    const res = await fetch(`${hub}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; info: { title: string }; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("Agent Hub");
    expect(Object.keys(doc.paths)).toContain("/status");
    // Every tenant route is documented with its error responses in the shared envelope.
    for (const path of [
      "/api/tenants",
      "/api/tenants/{tenantId}/principals/{principalId}/evaluate",
      "/api/tenants/{tenantId}/grants/{grantId}",
      "/api/me/invitations/{principalId}/accept",
      "/api/auth/sign-in/email",
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    const tags = (doc as unknown as { tags: { name: string }[] }).tags.map((t) => t.name);
    expect(tags).toEqual(expect.arrayContaining(["User", "Tenants", "Principals", "Roles", "Grants", "Auth"]));
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("the console's API types are those of this document (`npm run console:types` renews them)", async () => {
    const doc = await (await fetch(`${hub}/openapi.json`)).json();
    const committed = await readFile(consoleTypesPath, "utf8");
    expect(committed === (await consoleTypesOf(doc)), "console/src/api-types.ts is stale: npm run console:types").toBe(
      true,
    );
  });

  it("serves the API reference page at /docs", async () => {
    const res = await fetch(`${hub}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("/openapi.json");
    expect(html.toLowerCase()).toContain("<title>agent hub api reference</title>");
  });

  it("answers unknown routes with the 404 envelope", async () => {
    const res = await fetch(`${hub}/api/nothing-here`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
  });
});
