/**
 * Frames kept for a sidecar that is away: mail, grant and source updates, sync requests and aborts wait
 * in the instance object's SQLite storage and go out in order once the sidecar has proved itself again.
 * Bounded by count and age, so a sidecar that never returns cannot grow the storage without end.
 */
import type { InstanceHubFrame } from "./protocol";

const MAX_FRAMES = 1_000;
const MAX_AGE_MS = 24 * 60 * 60 * 1000;

const KEPT_TYPES: ReadonlySet<InstanceHubFrame["type"]> = new Set([
  "mail.inbound",
  "grants.update",
  "sources.update",
  "sync.request",
  "session.abort",
  "approval.decision",
]);

/** Whether a frame is worth keeping for the sidecar's return (the handshake frames are not). */
export function isKeptWhileAway(frame: InstanceHubFrame): boolean {
  return KEPT_TYPES.has(frame.type);
}

export class Outbox {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(
      "create table if not exists outbox (id integer primary key autoincrement, frame text not null, at integer not null)",
    );
  }

  keep(frame: InstanceHubFrame, now = Date.now()): void {
    this.sql.exec("insert into outbox (frame, at) values (?, ?)", JSON.stringify(frame), now);
    this.sql.exec(
      "delete from outbox where at < ? or id <= (select max(id) from outbox) - ?",
      now - MAX_AGE_MS,
      MAX_FRAMES,
    );
  }

  /**
   * Sends the kept frames in order, each removed once sent; stops at the first that `send` cannot deliver.
   * Returns the ids of the mail that went out.
   */
  flush(send: (frame: InstanceHubFrame) => boolean): string[] {
    const rows = this.sql.exec<{ id: number; frame: string }>("select id, frame from outbox order by id").toArray();
    const mailIds: string[] = [];
    for (const row of rows) {
      const frame = JSON.parse(row.frame) as InstanceHubFrame;
      if (!send(frame)) break;
      this.sql.exec("delete from outbox where id = ?", row.id);
      if (frame.type === "mail.inbound") mailIds.push(frame.mailId);
    }
    return mailIds;
  }

  clear(): void {
    this.sql.exec("delete from outbox");
  }
}
