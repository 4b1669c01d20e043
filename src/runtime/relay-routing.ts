/**
 * Which object serves a new SSE subscriber of an instance (docs/events.md, "Relays"): the instance's own
 * object serves the first `perObject`; beyond that, each goes to a relay object, which takes one feed from
 * the instance and serves up to `perObject` of its own. Relays fill in order, so an audience uses as few
 * feeds as it can (each costs the instance a write per tick); past `MAX_RELAYS` the least loaded relay
 * takes the subscriber. The loads are what the relays report, plus the subscribers sent to them since.
 */

declare global {
  /** wrangler.instances.toml's variable: `wrangler types` reads variables from wrangler.toml alone. */
  interface Env {
    SSE_SUBSCRIBERS_PER_OBJECT?: string;
  }
}

/** Subscribers one object serves when the `SSE_SUBSCRIBERS_PER_OBJECT` variable is not a positive number. */
export const SUBSCRIBERS_PER_OBJECT = 1_000;
/** The instance writes every relay's feed on every tick: 16 feeds at 200 ticks/s are 3,200 writes/s. */
export const MAX_RELAYS = 16;

/** The instance's answer that sends a subscriber to a relay, and the relay's feed request: the relay's index. */
export const RELAY_HEADER = "x-event-relay";
/** The relay's subscribers, on its feed request. */
export const RELAY_MEMBERS_HEADER = "x-event-relay-members";
/** The instance a relay serves, on the requests the Worker forwards to it. */
export const RELAY_INSTANCE_HEADER = "x-event-relay-instance";
/** On a feed's response: the last event before its live part. */
export const FEED_SEQ_HEADER = "x-event-seq";

/** What a relay's new subscriber gets first (the instance's replay) and the last event that covers. */
export type RelayJoin = { head: string; throughSeq: number; ended: boolean };

export function subscribersPerObject(env: Pick<Env, "SSE_SUBSCRIBERS_PER_OBJECT">): number {
  const configured = Number(env.SSE_SUBSCRIBERS_PER_OBJECT);
  return Number.isSafeInteger(configured) && configured > 0 ? configured : SUBSCRIBERS_PER_OBJECT;
}

export class RelayRouter {
  private readonly loads: number[] = [];

  constructor(
    private readonly perObject: number,
    private readonly maxRelays = MAX_RELAYS,
  ) {}

  /** null: the instance serves the subscriber itself; else the relay it goes to. */
  route(direct: number): number | null {
    if (direct < this.perObject) return null;
    let relay = this.loads.findIndex((load) => load < this.perObject);
    if (relay < 0 && this.loads.length < this.maxRelays) relay = this.loads.length;
    if (relay < 0) relay = this.loads.indexOf(Math.min(...this.loads));
    this.loads[relay] = (this.loads[relay] ?? 0) + 1;
    return relay;
  }

  /** What a relay says it serves. */
  report(relay: number, members: number): void {
    if (!Number.isSafeInteger(relay) || relay < 0 || relay >= this.maxRelays) return;
    while (this.loads.length < relay) this.loads.push(0);
    this.loads[relay] = Math.max(0, members);
  }
}
