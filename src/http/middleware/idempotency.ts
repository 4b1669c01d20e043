/**
 * `Idempotency-Key` on the JSON API's POST and PATCH, as payment APIs have it: the same key and request
 * within 24 hours replays the stored response (`Idempotent-Replayed: true`) without running anything
 * again; the same key with another request is a 422, and while the first is still running a 409.
 * Keys are scoped to the caller (user, or agent principal) and the URL's tenant. Anonymous requests
 * ignore the header: they are refused anyway.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode, StatusCode } from "hono/utils/http-status";
import { getDb } from "../../db/client";
import {
  claimIdempotencyKey,
  releaseIdempotencyKey,
  type StoredResponse,
  storeIdempotentResponse,
} from "../../db/idempotency";
import { badRequest } from "../../errors";
import { sha256 } from "../../lib/secret-digest";
import type { TenantRow } from "../../tenancy/tenants";
import type { AppEnv } from "../context";

const methods = new Set(["POST", "PATCH"]);
const validKey = /^[\x21-\x7E]{1,255}$/;

/**
 * Not kept: a 5xx (the request may not have happened; a retry must run), a 202 (an agent's pending
 * approval: the retry after approval has to run) and a 429 (a retry later should run).
 */
export const isReplayable = (status: number) => status < 500 && status !== 202 && status !== 429;

function callerScope(c: Context<AppEnv>): string | null {
  const user = c.get("user");
  if (user) return `user:${user.id}`;
  const agent = c.get("agent");
  return agent ? `agent:${agent.principalId}` : null;
}

/** SHA-256 over the method, the path with its query and the body bytes. */
async function requestHash(c: Context<AppEnv>): Promise<Uint8Array> {
  const url = new URL(c.req.url);
  const head = new TextEncoder().encode(`${c.req.method} ${url.pathname}${url.search}\n`);
  const body = new Uint8Array(await c.req.arrayBuffer());
  const all = new Uint8Array(head.byteLength + body.byteLength);
  all.set(head);
  all.set(body, head.byteLength);
  return sha256(all);
}

export function idempotency(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header("idempotency-key");
    if (key === undefined || !methods.has(c.req.method)) return next();
    const caller = callerScope(c);
    if (!caller) return next();
    if (!validKey.test(key)) {
      throw badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters", "invalid_idempotency_key");
    }
    // Set by the tenant middleware on tenant routes; other routes share one scope per caller.
    const tenant = c.get("tenant") as TenantRow | undefined;
    const target = { scope: `${tenant?.id ?? "-"}/${caller}`, key };
    const db = getDb(c.env);

    const claim = await claimIdempotencyKey(db, target, await requestHash(c));
    if (claim.kind === "replay") {
      const { status, contentType, body } = claim.response;
      if (contentType) c.header("content-type", contentType);
      c.header("idempotent-replayed", "true");
      if (body.byteLength === 0) return c.body(null, status as StatusCode);
      return c.body(new Uint8Array(body), status as ContentfulStatusCode);
    }

    try {
      await next();
    } catch (err) {
      await releaseIdempotencyKey(db, target, claim.claimedAt);
      throw err;
    }
    const res = c.res;
    if (!isReplayable(res.status)) return releaseIdempotencyKey(db, target, claim.claimedAt);
    const stored: StoredResponse = {
      status: res.status,
      contentType: res.headers.get("content-type"),
      body: new Uint8Array(await res.clone().arrayBuffer()),
    };
    // The work is done: a failed write must not turn its answer into a 500 the client would retry.
    await storeIdempotentResponse(db, target, claim.claimedAt, stored).catch((err: unknown) =>
      console.error(`[${c.get("requestId")}] idempotency key not stored`, err),
    );
  };
}
