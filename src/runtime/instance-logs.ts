/**
 * Instance logs (docs/observability.md, "Logs"): what the hub records about an instance — launch, deploy,
 * reconnects, aborts, errors, approvals, wallet events — and what its sidecar sends in `log` frames. They
 * live in D1, so an agent's logs are one query over all its instances.
 *
 * Bounded per instance like the event log: at most `MAX_LOGS_PER_INSTANCE` entries (the oldest go first)
 * and none older than `LOG_RETENTION_MS` (never listed, and deleted by the cleanup pass).
 */
import { and, eq, gte, inArray, lt } from "drizzle-orm";
import { type Db, getDb } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { instanceLog, type logLevels, type logSources } from "../db/schema";
import { newId } from "../lib/ids";
import type { InstanceSetup } from "./instance-state";
import type { InstanceSidecarFrame } from "./protocol";

export type LogLevel = (typeof logLevels)[number];
export type LogSource = (typeof logSources)[number];
export type LogRow = typeof instanceLog.$inferSelect;

export const MAX_LOGS_PER_INSTANCE = 10_000;
export const LOG_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** The count bound is enforced on every this many writes of an instance, so it is exceeded by less than that. */
const PRUNE_EVERY = 100;
/** Expired entries the cleanup pass deletes at most per run (it runs every 5 minutes). */
const EXPIRED_PER_PASS = 10_000;
const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export type LogEntryInput = {
  tenantId: string;
  agentId: string;
  instanceId: string;
  level: LogLevel;
  source: LogSource;
  message: string;
  metadata?: Record<string, unknown> | null | undefined;
};

/** Per instance, in this isolate: writes since the last prune, and the last time given out. */
const writes = new Map<string, number>();
const lastStamp = new Map<string, number>();

/**
 * Entries of one instance get strictly increasing times: the clock does not move between two writes of
 * one step (it only advances across I/O), and the list is ordered by time.
 */
function stamp(instanceId: string): Date {
  if (lastStamp.size > 10_000) lastStamp.clear();
  const at = Math.max(Date.now(), (lastStamp.get(instanceId) ?? 0) + 1);
  lastStamp.set(instanceId, at);
  return new Date(at);
}

export async function writeLog(db: Db, entry: LogEntryInput): Promise<void> {
  await db.insert(instanceLog).values({
    id: newId("instanceLog"),
    ...entry,
    metadata: entry.metadata ?? null,
    createdAt: stamp(entry.instanceId),
  });
  if (writes.size > 10_000) writes.clear();
  const count = writes.get(entry.instanceId) ?? 0;
  writes.set(entry.instanceId, count + 1);
  if (count % PRUNE_EVERY === 0) await pruneInstanceLogs(db, entry.instanceId);
}

/**
 * Records what the hub saw happen to an instance. Logging never breaks what it describes: a failed write
 * goes to the console.
 */
export async function hubLog(
  env: Env,
  setup: Pick<InstanceSetup, "tenantId" | "instanceId"> & { config: { agentId: string } },
  level: LogLevel,
  message: string,
  metadata?: Record<string, unknown>,
): Promise<void> {
  const entry = { tenantId: setup.tenantId, agentId: setup.config.agentId, instanceId: setup.instanceId };
  await writeLog(getDb(env), { ...entry, level, source: "hub", message, metadata }).catch((err: unknown) =>
    console.error("instance log write failed", err),
  );
}

/** A sidecar's `log` frame (its shape and size were checked with the frame). */
export async function sidecarLog(
  env: Env,
  setup: InstanceSetup,
  frame: Extract<InstanceSidecarFrame, { type: "log" }>,
): Promise<void> {
  const entry = { tenantId: setup.tenantId, agentId: setup.config.agentId, instanceId: setup.instanceId };
  await writeLog(getDb(env), {
    ...entry,
    level: frame.level,
    source: "sidecar",
    message: frame.message,
    metadata: frame.metadata,
  });
}

/** Deletes an instance's entries past the newest `keep` and those older than the retention. */
export async function pruneInstanceLogs(
  db: Db,
  instanceId: string,
  keep = MAX_LOGS_PER_INSTANCE,
  now = Date.now(),
): Promise<void> {
  await db.$client
    .prepare(
      `delete from instance_log where instance_id = ?1 and (created_at < ?2 or id in (
         select id from instance_log where instance_id = ?1 order by created_at desc, id desc limit -1 offset ?3))`,
    )
    .bind(instanceId, now - LOG_RETENTION_MS, keep)
    .run();
}

/** The cleanup pass: entries past the retention, of every instance (also those that stopped long ago). */
export async function deleteExpiredLogs(db: Db, now = Date.now()): Promise<void> {
  await db.$client
    .prepare("delete from instance_log where id in (select id from instance_log where created_at < ?1 limit ?2)")
    .bind(now - LOG_RETENTION_MS, EXPIRED_PER_PASS)
    .run();
}

export type LogQuery = PageQuery & {
  /** This level or more severe. */
  level?: LogLevel | undefined;
  /** Inclusive start and exclusive end, ms. */
  startTime?: number | undefined;
  endTime?: number | undefined;
};

/** One page of an agent's (all its instances) or one instance's entries, newest first. */
export async function listLogs(
  db: Db,
  tenantId: string,
  of: { agentId: string } | { instanceId: string },
  query: LogQuery,
) {
  const levels = query.level ? LEVELS.slice(LEVELS.indexOf(query.level)) : null;
  // Entries past the retention are gone for readers even before the cleanup pass deletes them.
  const from = Math.max(query.startTime ?? 0, Date.now() - LOG_RETENTION_MS);
  return paginate(
    query,
    { time: instanceLog.createdAt, id: instanceLog.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(instanceLog)
        .where(
          and(
            eq(instanceLog.tenantId, tenantId),
            "agentId" in of ? eq(instanceLog.agentId, of.agentId) : eq(instanceLog.instanceId, of.instanceId),
            levels && levels.length < LEVELS.length ? inArray(instanceLog.level, [...levels]) : undefined,
            gte(instanceLog.createdAt, new Date(from)),
            query.endTime !== undefined ? lt(instanceLog.createdAt, new Date(query.endTime)) : undefined,
            keyset,
          ),
        )
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}
