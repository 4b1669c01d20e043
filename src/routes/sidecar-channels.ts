/**
 * The sidecar's WebSocket channels (docs/sidecar-protocol.md): authenticated by the sidecar secret, then
 * handed to the Durable Object that holds them. Not JSON routes, so not in the OpenAPI document.
 */
import { and, eq } from "drizzle-orm";
import { type Context, Hono } from "hono";
import { getDb } from "../db/client";
import { agentInstance } from "../db/schema";
import { ApiError } from "../errors";
import type { AppEnv } from "../http/context";
import { errorResponse } from "../http/error-envelope";
import { authenticateSidecar } from "../runtime/sidecars";

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

export const sidecarChannelRoutes = new Hono<AppEnv>()
  .get("/api/sidecars/connect", async (c) => {
    const sidecar = await sidecarOf(c);
    const stub = c.env.SIDECAR.get(c.env.SIDECAR.idFromName(sidecar.id));
    return mutable(
      await stub.fetch(forward(c, "/connect", { "x-sidecar-id": sidecar.id, "x-tenant-id": sidecar.tenantId })),
    );
  })
  .get("/api/sidecars/instances/:instanceId/connect", async (c) => {
    const sidecar = await sidecarOf(c);
    const instanceId = c.req.param("instanceId");
    const instance = await getDb(c.env).query.agentInstance.findFirst({
      where: and(eq(agentInstance.id, instanceId), eq(agentInstance.tenantId, sidecar.tenantId)),
    });
    if (!instance) return errorResponse(c, 404, "not_found", "Instance not found");
    if (instance.sidecarId !== sidecar.id) {
      return errorResponse(c, 403, "forbidden", "This instance is assigned to another sidecar");
    }
    if (instance.status === "stopped" || instance.status === "error") {
      return errorResponse(c, 410, "gone", "Instance has stopped");
    }
    const stub = c.env.INSTANCE.get(c.env.INSTANCE.idFromName(instanceId));
    return mutable(await stub.fetch(forward(c, "/connect", { "x-sidecar-id": sidecar.id })));
  });
