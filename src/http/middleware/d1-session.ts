/**
 * D1 read replication (docs/http-conventions.md, "Read replication"): each JSON API request runs its D1
 * queries in one D1 session, opened at the bookmark the client sent in `X-D1-Bookmark`, and answers with
 * the session's latest bookmark in the same header. A request without one starts unconstrained (a read) or
 * at the primary (a change). A change always starts at the primary, which is newer than any bookmark, so
 * its authorization never rests on a replica's older grants.
 *
 * Outside sessions, on the plain binding whose queries all go to the primary: git smart HTTP and the
 * sidecar channels (their clients carry no bookmark), the Durable Objects and the scheduled cleanup.
 */
import type { MiddlewareHandler } from "hono";
import { setMetric } from "hono/timing";
import { runInRequestD1 } from "../../db/client";
import { RequestD1 } from "../../db/request-d1";
import { badRequest } from "../../errors";
import type { AppEnv } from "../context";

export const BOOKMARK_HEADER = "X-D1-Bookmark";

/** D1's bookmark format (e.g. `00000001-00000002-00004e2f-0a83ea2fceebc654de0640c422be4653`). */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;
const mutating = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function d1Session(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // An empty header is no bookmark: clients echo `getBookmark() ?? ""`.
    const sent = c.req.header(BOOKMARK_HEADER)?.trim() || null;
    // Refused before anything runs: every query, the caller's lookup too, runs in the session it names,
    // and the binding passes any string on to D1 unchecked.
    if (sent !== null && !BOOKMARK.test(sent)) {
      throw badRequest(`${BOOKMARK_HEADER} must be a bookmark an earlier response carried`, "invalid_bookmark");
    }
    const change = mutating.has(c.req.method);
    const db = new RequestD1(c.env.DB, change ? "first-primary" : (sent ?? "first-unconstrained"));
    c.env = { ...c.env, DB: db };
    await runInRequestD1(db, next);
    const { roundTrips, ms } = db.usage;
    setMetric(c, "d1", ms, `${roundTrips} round trip${roundTrips === 1 ? "" : "s"}`, 0);
    const bookmark = await db.bookmark(change);
    if (bookmark) c.header(BOOKMARK_HEADER, bookmark);
  };
}
