/**
 * Tenant resolution for `/api/tenants/:tenantId/...`: the caller (session or agent token), the tenant, the
 * caller's principal in it and its grants go into the context, all from one D1 round trip
 * (`accessCheck`). Runs before the session middleware, which then has nothing left to do.
 *
 * A safe request (GET, HEAD) whose caller was seen in this tenant before acts on that snapshot
 * (`tenancy/access-snapshots.ts`) while the fresh check rides with the request's first read; a check that
 * no longer matches has the request sent again, checked first (`resendingStaleAccess`).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context, MiddlewareHandler } from "hono";
import { getDb } from "../../db/client";
import { RequestD1 } from "../../db/request-d1";
import { notFound, unauthorized } from "../../errors";
import {
  fingerprintOf,
  forgetAccess,
  rememberAccess,
  snapshotKey,
  usableSnapshot,
} from "../../tenancy/access-snapshots";
import { accessCheck, type CallerAccess } from "../../tenancy/tenant-access";
import type { AppEnv } from "../context";
import { requestCredential, setCaller } from "./session";

const SAFE = new Set(["GET", "HEAD"]);
/** What one dispatch of a request learnt: whether it acted on a stale snapshot; whether it is a resend. */
type Dispatch = { stale: boolean; resent: boolean };
const dispatches = new AsyncLocalStorage<Dispatch>();

function setAccess(c: Context<AppEnv>, { caller, access }: CallerAccess): void {
  setCaller(c, caller);
  c.set("tenant", access.tenant);
  c.set("principal", access.principal);
  c.set("grants", access.grants);
}

export function resolveTenant(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Already resolved (git token auth, or a second matching mount).
    if (c.get("tenant") && c.get("principal")) return next();
    const tenantId = c.req.param("tenantId");
    const credential = await requestCredential(c);
    if (!credential) throw unauthorized();
    if (!tenantId) throw notFound("Tenant not found");
    const db = getDb(c.env);
    const check = accessCheck(db, tenantId, credential);
    const key = snapshotKey(credential, tenantId);

    const d1 = c.env.DB;
    const mayUseSnapshot = SAFE.has(c.req.method) && dispatches.getStore()?.resent === false;
    const snapshot = mayUseSnapshot ? usableSnapshot(key, credential) : null;
    if (snapshot && d1 instanceof RequestD1) {
      setAccess(c, snapshot.resolved);
      d1.carry(check.statements, (results) => fingerprintOf(results) === snapshot.fingerprint);
      await next();
      if (!(await d1.carried())) {
        forgetAccess(key);
        const dispatch = dispatches.getStore();
        if (dispatch) dispatch.stale = true;
      }
      return;
    }

    const results = await db.$client.batch(check.statements);
    const resolved = await check.settle(results);
    if (!resolved) throw unauthorized();
    rememberAccess(key, credential, results, resolved);
    setAccess(c, resolved);
    await next();
  };
}

/**
 * The app's fetch, sending a request again when the snapshot it acted on proved stale: its first answer
 * is dropped unread, and the second is checked before anything runs. Only safe requests act on a
 * snapshot, so running one twice changes nothing.
 */
export function resendingStaleAccess<Rest extends unknown[]>(
  fetch: (request: Request, ...rest: Rest) => Response | Promise<Response>,
) {
  return async (request: Request, ...rest: Rest): Promise<Response> => {
    const first: Dispatch = { stale: false, resent: false };
    const response = await dispatches.run(first, () => fetch(request, ...rest));
    if (!first.stale) return response;
    await response.body?.cancel();
    return dispatches.run({ stale: false, resent: true }, () => fetch(new Request(request), ...rest));
  };
}
