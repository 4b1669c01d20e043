import { z } from "@hono/zod-openapi";
import { type Context, Hono } from "hono";
import { getDb } from "../db/client";
import { ApiError } from "../errors";
import type { AppEnv } from "../http/context";
import { errorResponse } from "../http/error-envelope";
import { ErrorSchema, errors, jsonBody } from "../http/responses";
import { createRouter } from "../http/router";
import { findInstance } from "../runtime/instances";
import { authenticateSidecar } from "../runtime/sidecars";
import { instanceObject, sidecarObject } from "../runtime/stubs";

async function sidecarOf(c: Context<AppEnv>) {
  const header = c.req.header("authorization") ?? "";
  const secret = /^bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
  const sidecar = secret ? await authenticateSidecar(getDb(c.env), secret) : null;
  if (!sidecar)
    throw new ApiError(401, "unauthorized", "A valid sidecar secret is required (Authorization: Bearer ahs_…)");
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "This endpoint only accepts a WebSocket upgrade");
  }
  return sidecar;
}

/** Forwards the upgrade with the authenticated identity; the client cannot set these headers itself. */
function forward(c: Context<AppEnv>, path: string, identity: Record<string, string>): Request {
  const headers = new Headers(c.req.raw.headers);
  for (const name of ["x-sidecar-id", "x-tenant-id"]) headers.delete(name);
  for (const [name, value] of Object.entries(identity)) headers.set(name, value);
  return new Request(`https://do${path}`, { method: "GET", headers });
}

/** Responses from a Durable Object have immutable headers; the app's middleware adds its own. */
export function mutable(res: Response): Response {
  return new Response(res.body, { status: res.status, headers: res.headers, webSocket: res.webSocket });
}

const CHANNEL_PATH = /^\/api\/sidecars\/(connect|instances\/[^/]+\/connect)$/;

/** Whether a request is a sidecar WebSocket channel (not a browser API: no CORS). */
export function isSidecarChannel(c: Context): boolean {
  return CHANNEL_PATH.test(c.req.path);
}

export const sidecarChannelRoutes = new Hono<AppEnv>()
  .get("/api/sidecars/connect", async (c) => {
    const sidecar = await sidecarOf(c);
    return mutable(
      await sidecarObject(c.env, sidecar.id).fetch(
        forward(c, "/connect", { "x-sidecar-id": sidecar.id, "x-tenant-id": sidecar.tenantId }),
      ),
    );
  })
  .get("/api/sidecars/instances/:instanceId/connect", async (c) => {
    const sidecar = await sidecarOf(c);
    const instanceId = c.req.param("instanceId");
    const instance = await findInstance(getDb(c.env), sidecar.tenantId, instanceId);
    if (instance.sidecarId !== sidecar.id) {
      return errorResponse(c, 403, "forbidden", "This instance is assigned to another sidecar");
    }
    if (instance.status === "stopped" || instance.status === "error") {
      return errorResponse(c, 410, "gone", "Instance has stopped");
    }
    return mutable(
      await instanceObject(c.env, instanceId).fetch(forward(c, "/connect", { "x-sidecar-id": sidecar.id })),
    );
  });

/** The two upgrades, described for the API reference (the frames are in docs/sidecar-protocol.md). */
export const sidecarChannelDocs = createRouter();
const upgraded = {
  101: {
    description: "Switching Protocols: the channel is open; frames are JSON text messages (docs/sidecar-protocol.md)",
  },
};
sidecarChannelDocs.openAPIRegistry.registerPath({
  method: "get",
  path: "/api/sidecars/connect",
  tags: ["Sidecars"],
  summary: "Open a sidecar's control channel (WebSocket)",
  description:
    "Needs `Authorization: Bearer ahs_…` (the sidecar's secret) and `Upgrade: websocket`. The hub says `hello`, then " +
    "assigns instances (`instance.assign`) and revokes them (docs/sidecar-protocol.md, section 2).",
  security: [{ bearer: [] }],
  responses: { ...upgraded, ...errors(401, 426) },
});
sidecarChannelDocs.openAPIRegistry.registerPath({
  method: "get",
  path: "/api/sidecars/instances/{instanceId}/connect",
  tags: ["Sidecars"],
  summary: "Open an instance channel (WebSocket)",
  description:
    "Needs the sidecar's secret and `Upgrade: websocket`; the instance must be assigned to this sidecar (403) and live " +
    "(410). First contact gets `agent.deploy`; a returning sidecar gets the `challenge` (docs/sidecar-protocol.md).",
  security: [{ bearer: [] }],
  request: {
    params: z.object({ instanceId: z.string().openapi({ example: "ins_0123456789abcdef0123456789abcdef" }) }),
  },
  responses: {
    ...upgraded,
    ...errors(401, 404, 410, 426),
    403: jsonBody(ErrorSchema, "The instance is assigned to another sidecar (`forbidden`)"),
  },
});
