/**
 * Where each turn and mail starts in an instance's event log, so a timeline item can open the live stream
 * at that point: the cursor is the `Last-Event-ID` whose replay begins with the item's first event (a
 * turn's first `inference.start`, as its `turn.started` says; a mail's `mail.delivered`).
 */
import type { LoggedEvent } from "./event-log";

export type TimelineCursors = { turns: Record<string, number>; mail: Record<string, number> };

export function timelineCursors(events: readonly LoggedEvent[]): TimelineCursors {
  const cursors: TimelineCursors = { turns: {}, mail: {} };
  for (const event of events) {
    if (event.type === "turn.started") {
      const data = parse(event.data);
      if (typeof data.turnId === "string" && typeof data.cursor === "number") cursors.turns[data.turnId] = data.cursor;
    } else if (event.type === "mail.delivered") {
      const id = parse(event.data).id;
      if (typeof id === "string") cursors.mail[id] = event.seq - 1;
    }
  }
  return cursors;
}

function parse(data: string): Record<string, unknown> {
  try {
    const value = JSON.parse(data) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
