import { createApp } from "./app";
import { getDb } from "./db/client";
import { deleteExpiredIdempotencyKeys } from "./db/idempotency";
import { sweepOrphanPacks } from "./git/service/sweep";
import { expireAndAnnounce } from "./runtime/approval-updates";
import { deleteExpiredLogs } from "./runtime/instance-logs";
import { settleInterruptedLaunches } from "./runtime/instances";

// Deployed, INSTANCE and EVENT_RELAY are bound to the instances Worker's classes (src/instances-worker.ts);
// these exports let the Workers test pool run both in one Worker.
export { EventRelayObject } from "../durable-objects/event-relay";
export { InstanceObject } from "../durable-objects/instance";
export { RateLimiterObject } from "../durable-objects/rate-limiter";
export { SidecarObject } from "../durable-objects/sidecar";

const app = createApp();

export default {
  fetch: app.fetch,
  /** The cleanup passes (wrangler.toml `triggers.crons`). */
  async scheduled(_controller, env, ctx) {
    const db = getDb(env);
    ctx.waitUntil(
      sweepOrphanPacks(db, env.BLOBS).then((report) => {
        if (report.deleted.length > 0 || report.busy.length > 0) console.log("git pack sweep", JSON.stringify(report));
      }),
    );
    ctx.waitUntil(expireAndAnnounce(env, db));
    ctx.waitUntil(deleteExpiredIdempotencyKeys(db));
    ctx.waitUntil(deleteExpiredLogs(db));
    ctx.waitUntil(
      settleInterruptedLaunches(env, db).then((settled) => {
        if (settled.length > 0) console.log("interrupted launches settled", JSON.stringify(settled));
      }),
    );
  },
} satisfies ExportedHandler<Env>;
