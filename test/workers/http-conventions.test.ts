/**
 * The HTTP conventions every route inherits: the error envelope, request ids, JSON body checks, body
 * size limit, validation errors and the 500 handler. A small router added to the real app gives the
 * conventions something to validate; everything else (middleware, hooks, handlers) is the app's own.
 */

import { env } from "cloudflare:workers";
import { createRoute, z } from "@hono/zod-openapi";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp, MAX_JSON_BODY_BYTES } from "../../src/app";
import { ErrorSchema } from "../../src/http/responses";

const WidgetSchema = z.object({
  name: z.string().min(1).max(40),
  size: z.number().int().positive(),
  tags: z.array(z.string()).optional(),
});

function appWithProbeRoutes() {
  const app = createApp();
  app.openapi(
    createRoute({
      method: "post",
      path: "/api/probe/widgets",
      request: { body: { required: true, content: { "application/json": { schema: WidgetSchema } } } },
      responses: { 201: { description: "created", content: { "application/json": { schema: WidgetSchema } } } },
    }),
    (c) => c.json(c.req.valid("json"), 201),
  );
  app.get("/api/probe/explode", () => {
    throw new Error("secret internal detail: db password is hunter2");
  });
  app.get("/api/probe/duplicate", () => {
    throw new Error("D1_ERROR: UNIQUE constraint failed: tenant.slug: SQLITE_CONSTRAINT");
  });
  return app;
}

let app: ReturnType<typeof appWithProbeRoutes>;
beforeAll(() => {
  app = appWithProbeRoutes();
});

async function call(path: string, init?: RequestInit) {
  const res = await app.request(path, init, env);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { res, body };
}

function expectEnvelope(body: unknown, code: string) {
  const parsed = ErrorSchema.safeParse(body);
  expect(parsed.success, JSON.stringify(body)).toBe(true);
  const error = (body as { error: { code: string; message: string; requestId: string; details?: unknown } }).error;
  expect(error.code).toBe(code);
  expect(error.requestId).not.toBe("");
  return error;
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

describe("request ids", () => {
  it("puts X-Request-Id on every response and the same id in error bodies", async () => {
    const ok = await call("/status");
    expect(ok.res.status).toBe(200);
    expect(ok.res.headers.get("x-request-id")).toMatch(/^[\w-]{8,}$/);

    const missing = await call("/nope");
    const id = missing.res.headers.get("x-request-id");
    expect(id).toBeTruthy();
    expect(expectEnvelope(missing.body, "not_found").requestId).toBe(id);
  });

  it("keeps a well-formed id the client sent, for tracing across systems", async () => {
    const { res, body } = await call("/nope", { headers: { "x-request-id": "client-trace-42" } });
    expect(res.headers.get("x-request-id")).toBe("client-trace-42");
    expect(expectEnvelope(body, "not_found").requestId).toBe("client-trace-42");
  });
});

describe("error envelope", () => {
  it("answers unknown routes with 404 not_found", async () => {
    const { res, body } = await call("/api/does-not-exist", { method: "DELETE" });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    expect(expectEnvelope(body, "not_found").message).toContain("DELETE /api/does-not-exist");
  });

  it("turns an uncaught error into a 500 without internals", async () => {
    const { res, body } = await call("/api/probe/explode");
    expect(res.status).toBe(500);
    const error = expectEnvelope(body, "internal_error");
    expect(JSON.stringify(body)).not.toContain("hunter2");
    expect(error.message).toBe("Internal server error");
  });

  it("turns a unique-constraint failure into 409 conflict", async () => {
    const { res, body } = await call("/api/probe/duplicate");
    expect(res.status).toBe(409);
    expectEnvelope(body, "conflict");
    expect(JSON.stringify(body)).not.toContain("SQLITE");
  });
});

describe("JSON bodies", () => {
  it("accepts a valid body", async () => {
    const { res, body } = await call("/api/probe/widgets", json({ name: "gear", size: 3 }));
    expect(res.status).toBe(201);
    expect(body).toEqual({ name: "gear", size: 3 });
  });

  it("rejects malformed JSON with 400 invalid_json", async () => {
    const { res, body } = await call("/api/probe/widgets", json('{"name": "gear", "size": '));
    expect(res.status).toBe(400);
    expect(expectEnvelope(body, "invalid_json").message).toMatch(/malformed json/i);
  });

  it("rejects a schema violation with 400 validation_failed and the issues in details", async () => {
    const { res, body } = await call("/api/probe/widgets", json({ name: "", size: -2, tags: "x" }));
    expect(res.status).toBe(400);
    const error = expectEnvelope(body, "validation_failed") as unknown as {
      details: { issues: { location: string; path: string; message: string }[] };
    };
    const paths = error.details.issues.map((i) => i.path).sort();
    expect(paths).toEqual(["name", "size", "tags"]);
    expect(error.details.issues.every((i) => i.location === "json" && i.message.length > 0)).toBe(true);
  });

  it("rejects an empty JSON body with 400 invalid_json", async () => {
    const { res, body } = await call("/api/probe/widgets", {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expectEnvelope(body, "invalid_json");
  });

  it("rejects a body that is not labelled JSON with 415", async () => {
    const { res, body } = await call("/api/probe/widgets", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ name: "gear", size: 3 }),
    });
    expect(res.status).toBe(415);
    expectEnvelope(body, "unsupported_media_type");
  });

  it("rejects an oversized body with 413 before parsing it", async () => {
    const big = JSON.stringify({ name: "gear", size: 1, tags: ["x".repeat(MAX_JSON_BODY_BYTES)] });
    const { res, body } = await call("/api/probe/widgets", json(big));
    expect(res.status).toBe(413);
    const error = expectEnvelope(body, "payload_too_large") as unknown as { details: { maxBytes: number } };
    expect(error.details.maxBytes).toBe(MAX_JSON_BODY_BYTES);
  });

  it("rejects an oversized streamed body without a Content-Length", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_JSON_BODY_BYTES + chunk.length) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await app.request(
      "/api/probe/widgets",
      { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" }, body: stream },
      env,
    );
    expect(res.status).toBe(413);
    expectEnvelope(await res.json(), "payload_too_large");
  });
});
