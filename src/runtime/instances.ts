/** Reads and state changes of instances in D1 (the Durable Object holds the live side). */
import { and, asc, eq, inArray, isNotNull, lt } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import {
  agent,
  agentInstance,
  agentSession,
  approval,
  inferenceTurn,
  type instanceStatuses,
  principal,
  sessionMail,
  turnPart,
} from "../db/schema";
import { notFound } from "../errors";
import { parseMailToEmail } from "../mail/parse";
import { instanceObject } from "./stubs";

export type InstanceRow = typeof agentInstance.$inferSelect & { agentName: string };
export type InstanceStatus = (typeof instanceStatuses)[number];

const withName = { instance: agentInstance, agentName: agent.name };

export async function findInstance(db: Db, tenantId: string, instanceId: string): Promise<InstanceRow> {
  const [row] = await db
    .select(withName)
    .from(agentInstance)
    .innerJoin(agent, eq(agent.id, agentInstance.agentId))
    .where(and(eq(agentInstance.id, instanceId), eq(agentInstance.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Instance not found");
  return { ...row.instance, agentName: row.agentName };
}

export async function listInstances(
  db: Db,
  tenantId: string,
  query: PageQuery & { agentId?: string | undefined; status?: InstanceStatus | undefined },
) {
  const page = await paginate(
    query,
    { time: agentInstance.createdAt, id: agentInstance.id },
    (keyset, orderBy, limit) =>
      db
        .select(withName)
        .from(agentInstance)
        .innerJoin(agent, eq(agent.id, agentInstance.agentId))
        .where(
          and(
            eq(agentInstance.tenantId, tenantId),
            query.agentId ? eq(agentInstance.agentId, query.agentId) : undefined,
            query.status ? eq(agentInstance.status, query.status) : undefined,
            keyset,
          ),
        )
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.instance.createdAt.getTime(), id: row.instance.id }),
  );
  return { data: page.data.map((r) => ({ ...r.instance, agentName: r.agentName })), nextCursor: page.nextCursor };
}

/**
 * The D1 side of stopping: instance stopped, its principal deactivated, its session ended, and what it
 * still waited for expired (nobody is left to act on a decision) — together.
 */
export async function markStopped(db: Db, instance: InstanceRow, reason: string, now = new Date()) {
  await db.batch([
    db
      .update(agentInstance)
      .set({ status: "stopped", sessionId: null, endedAt: now, updatedAt: now, stopReason: reason, apiTokenHash: null })
      .where(eq(agentInstance.id, instance.id)),
    db
      .update(principal)
      .set({ status: "deactivated", updatedAt: now })
      .where(and(eq(principal.id, instance.principalId), eq(principal.refId, instance.id))),
    db
      .update(agentSession)
      .set({ status: "ended", endedAt: now, updatedAt: now })
      .where(eq(agentSession.id, instance.sessionId ?? "")),
    db
      .update(approval)
      .set({ status: "expired", resolvedAt: now })
      .where(and(eq(approval.instanceId, instance.id), eq(approval.status, "pending"))),
  ]);
}

/** A launch the sidecar never started: kept for the record as `error`, nothing left active. */
export async function markLaunchFailed(
  db: Db,
  instanceId: string,
  principalId: string,
  sessionId: string,
  reason: string,
) {
  const now = new Date();
  await db.batch([
    db
      .update(agentInstance)
      .set({ status: "error", sessionId: null, endedAt: now, updatedAt: now, stopReason: reason, apiTokenHash: null })
      .where(eq(agentInstance.id, instanceId)),
    db.update(principal).set({ status: "deactivated", updatedAt: now }).where(eq(principal.id, principalId)),
    db
      .update(agentSession)
      .set({ status: "ended", endedAt: now, updatedAt: now })
      .where(eq(agentSession.id, sessionId)),
  ]);
}

export async function listTurns(db: Db, instanceId: string, query: PageQuery) {
  const page = await paginate(
    query,
    { time: inferenceTurn.startedAt, id: inferenceTurn.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(inferenceTurn)
        .where(and(eq(inferenceTurn.instanceId, instanceId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.startedAt.getTime(), id: row.id }),
  );
  const ids = page.data.map((t) => t.id);
  const parts =
    ids.length === 0
      ? []
      : await db.select().from(turnPart).where(inArray(turnPart.turnId, ids)).orderBy(asc(turnPart.ordinal));
  return {
    data: page.data.map((turn) => ({ ...turn, parts: parts.filter((p) => p.turnId === turn.id) })),
    nextCursor: page.nextCursor,
  };
}

export type MailRow = typeof sessionMail.$inferSelect;

/** The raw MIME of a stored mail, from D1 or R2. */
export async function rawMail(bucket: R2Bucket, row: MailRow): Promise<Uint8Array | null> {
  if (row.raw) return new Uint8Array(row.raw);
  if (!row.rawKey) return null;
  const object = await bucket.get(row.rawKey);
  return object ? new Uint8Array(await object.arrayBuffer()) : null;
}

export function mailView(row: MailRow, raw: Uint8Array) {
  const email = parseMailToEmail(raw, row.id);
  return {
    ...email,
    id: row.id,
    sessionId: row.sessionId,
    instanceId: row.instanceId,
    direction: row.direction,
    status: row.status,
    receivedAt: row.createdAt.toISOString(),
  };
}

export async function listMail(db: Db, bucket: R2Bucket, instanceId: string, query: PageQuery) {
  const page = await paginate(
    query,
    { time: sessionMail.createdAt, id: sessionMail.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(sessionMail)
        .where(and(eq(sessionMail.instanceId, instanceId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
  const data = [];
  for (const row of page.data) {
    const raw = await rawMail(bucket, row);
    if (raw) data.push(mailView(row, raw));
  }
  return { data, nextCursor: page.nextCursor };
}

export async function getMail(db: Db, tenantId: string, mailId: string): Promise<MailRow | null> {
  const row = await db.query.sessionMail.findFirst({
    where: and(eq(sessionMail.id, mailId), eq(sessionMail.tenantId, tenantId)),
  });
  return row ?? null;
}

/** Tells each instance's Durable Object to stop: the sidecar undeploys it now, or learns it on reconnect. */
export async function undeployInstances(env: Env, instanceIds: readonly string[], reason: string): Promise<void> {
  await Promise.all(
    instanceIds.map((id) =>
      instanceObject(env, id)
        .stop(reason)
        .catch((err: unknown) => console.error(`stopping ${id} failed`, err)),
    ),
  );
}

/** The sidecar acknowledged the deploy with the instance's public key. */
export async function recordInstanceKey(db: Db, instanceId: string, publicKey: string): Promise<void> {
  await db.update(agentInstance).set({ publicKey, updatedAt: new Date() }).where(eq(agentInstance.id, instanceId));
}

/** The sidecar started the session: a deployed (or updating) instance is now running. */
export async function markInstanceRunning(db: Db, instanceId: string): Promise<void> {
  await db
    .update(agentInstance)
    .set({ status: "running", updatedAt: new Date() })
    .where(and(eq(agentInstance.id, instanceId), inArray(agentInstance.status, ["deployed", "updating"])));
}

/** A launch still `deployed` this long after its last change was cut off: a launch waits 30 s at most. */
export const INTERRUPTED_LAUNCH_MS = 2 * 60_000;

/**
 * The cleanup pass for launches a crash of the hub cut off (between the D1 batch and the instance's
 * object, or while the launch waited for its sidecar): nothing else would ever finish them. Each is
 * settled as its object saw it: `running` when the sidecar started it (only the D1 write was lost),
 * otherwise failed like a launch the sidecar never started, its object stopped so that a sidecar coming
 * back later is refused. Returns the ids settled.
 */
export async function settleInterruptedLaunches(env: Env, db: Db, now = new Date()): Promise<string[]> {
  const cutOff = await db
    .select({ id: agentInstance.id, principalId: agentInstance.principalId, sessionId: agentInstance.sessionId })
    .from(agentInstance)
    .where(
      and(
        eq(agentInstance.status, "deployed"),
        lt(agentInstance.updatedAt, new Date(now.getTime() - INTERRUPTED_LAUNCH_MS)),
      ),
    )
    .limit(50);
  const settled: string[] = [];
  for (const row of cutOff) {
    try {
      const object = instanceObject(env, row.id);
      const { phase } = await object.runtime();
      if (phase === "running") {
        await markInstanceRunning(db, row.id);
      } else {
        if (phase === "deploying") await object.stop("launch_interrupted");
        await markLaunchFailed(
          db,
          row.id,
          row.principalId,
          row.sessionId ?? "",
          "The launch was interrupted (the hub restarted) before the sidecar started the instance",
        );
      }
      settled.push(row.id);
    } catch (err) {
      // The next pass tries again; the others are settled now.
      console.error(`settling the interrupted launch of ${row.id} failed`, err);
    }
  }
  return settled;
}

/** The tenant's live instance that a mail address (`Name <ins_…@domain>` or bare) names, or null. */
export async function getInstanceByAddress(db: Db, tenantId: string, address: string) {
  const bare = address.replace(/^.*</, "").replace(/>.*$/, "").trim().toLowerCase();
  const row = await db.query.agentInstance.findFirst({
    where: and(
      eq(agentInstance.tenantId, tenantId),
      eq(agentInstance.address, bare),
      isNotNull(agentInstance.sessionId),
    ),
  });
  return row ?? null;
}
