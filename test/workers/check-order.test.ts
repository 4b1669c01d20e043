/**
 * Authentication comes before validation and existence on every operation: an anonymous request, whatever
 * its body, path ids or query, is a 401 in the envelope (never a 400 about its body, never a 404). Public
 * operations are the ones OpenAPI marks `security: []`.
 */
import { describe, expect, it } from "vitest";
import { api, expectError } from "./support/api";

type Operation = { security?: unknown[] };

describe("order of checks", () => {
  it("answers every authenticated operation with 401 to an anonymous request with a bad body", async () => {
    const doc = (await api("/openapi.json")).body as { paths: Record<string, Record<string, Operation>> };
    const checked: string[] = [];
    const wrong: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (Array.isArray(operation.security) && operation.security.length === 0) continue;
        const url = `${path.replace(/\{[^}]+\}/g, "nope")}?limit=-1&cursor=%%`;
        const body = ["post", "put", "patch"].includes(method) ? "{not json" : undefined;
        const res = await api(url, {
          method: method.toUpperCase(),
          ...(body ? { body, headers: { "content-type": "application/json" } } : {}),
        });
        checked.push(`${method.toUpperCase()} ${path}`);
        if (res.status !== 401) wrong.push(`${method.toUpperCase()} ${path} → ${res.status}`);
        else expectError(res, 401, res.body.error.code);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked.length).toBeGreaterThan(80);
  });

  it("marks the public operations security: []", async () => {
    const doc = (await api("/openapi.json")).body as { paths: Record<string, Record<string, Operation>> };
    const publicOps = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => Array.isArray(op.security) && op.security.length === 0)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(publicOps).toEqual(
      expect.arrayContaining(["GET /status", "GET /api/signing-key", "POST /api/auth/sign-in/email"]),
    );
  });
});
