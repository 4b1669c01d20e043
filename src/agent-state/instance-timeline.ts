/**
 * An instance's timeline, gathered: its state repository rebuilt, the turns and mail the hub recorded, and
 * where each of them starts in the instance's event log, merged into one list (`timeline.ts`).
 */
import { and, asc, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { inferenceTurn, sessionMail } from "../db/schema";
import { instanceObject } from "../runtime/stubs";
import { openState } from "./data";
import { findStateRepository } from "./repositories";
import { mergeTimeline, reconstructTimeline, type TimelineGap, type TimelineItem } from "./timeline";

export async function instanceTimeline(
  env: Env,
  db: Db,
  tenantId: string,
  instanceId: string,
): Promise<{ data: TimelineItem[]; gaps: TimelineGap[] }> {
  const repo = await findStateRepository(db, tenantId, instanceId);
  const opened = await openState(db, env.BLOBS, repo);
  const tip = opened.refs.find((r) => r.name === repo.defaultRef)?.oid ?? null;
  const [reconstructed, turns, mail, cursors] = await Promise.all([
    reconstructTimeline(opened.store, tip),
    db
      .select({
        id: inferenceTurn.id,
        status: inferenceTurn.status,
        startedAt: inferenceTurn.startedAt,
        endedAt: inferenceTurn.endedAt,
        model: inferenceTurn.model,
      })
      .from(inferenceTurn)
      .where(and(eq(inferenceTurn.instanceId, instanceId), eq(inferenceTurn.tenantId, tenantId)))
      .orderBy(asc(inferenceTurn.startedAt)),
    db
      .select({
        id: sessionMail.id,
        direction: sessionMail.direction,
        messageId: sessionMail.messageId,
        createdAt: sessionMail.createdAt,
      })
      .from(sessionMail)
      .where(and(eq(sessionMail.instanceId, instanceId), eq(sessionMail.tenantId, tenantId)))
      .orderBy(asc(sessionMail.createdAt)),
    instanceObject(env, instanceId).timelineCursors(),
  ]);
  const data = mergeTimeline(reconstructed, {
    turns: turns.map((t) => ({ ...t, startedAt: t.startedAt.getTime(), endedAt: t.endedAt?.getTime() ?? null })),
    mail: mail.map((m) => ({ ...m, createdAt: m.createdAt.getTime() })),
    cursors,
  });
  return { data, gaps: reconstructed.gaps };
}
