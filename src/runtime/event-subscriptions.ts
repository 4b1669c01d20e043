/**
 * The instance object's side of subscribing to its events (docs/events.md, "Relays"): a relay's feed, a
 * subscriber it serves itself, or, past its share of the audience, the relay the Worker should ask instead;
 * and the replay a relay's new subscriber starts with.
 */
import { resumeCursor } from "./live-events";
import { FEED_SEQ_HEADER, RELAY_HEADER, RELAY_MEMBERS_HEADER, type RelayJoin } from "./relay-routing";
import type { InstanceParts } from "./sidecar-frames";

export async function serveEvents(parts: InstanceParts, request: Request): Promise<Response> {
  const { events, relays } = parts;
  const cursor = resumeCursor(request);
  const ended = (await parts.state.phase()) === "stopped";
  const feedOf = request.headers.get(RELAY_HEADER);
  if (feedOf !== null) {
    relays.report(Number(feedOf), Number(request.headers.get(RELAY_MEMBERS_HEADER)));
    return events.openFeed(cursor, ended, FEED_SEQ_HEADER);
  }
  const inFlight = await parts.turns.inFlight();
  // Counted and opened in one synchronous step, so that concurrent subscribers cannot all take the last place.
  const relay = ended ? null : relays.route(events.subscribers);
  if (relay !== null) return new Response(null, { status: 307, headers: { [RELAY_HEADER]: String(relay) } });
  return events.open(cursor, inFlight, ended);
}

/** A relay's new subscriber: what it gets first. `members` is the relay's audience with it. */
export async function replayForRelay(
  parts: InstanceParts,
  relay: number,
  members: number,
  cursor: number | null,
): Promise<RelayJoin> {
  parts.relays.report(relay, members);
  const inFlight = cursor === null ? await parts.turns.inFlight() : null;
  return parts.events.replayFor(cursor, inFlight, (await parts.state.phase()) === "stopped");
}
