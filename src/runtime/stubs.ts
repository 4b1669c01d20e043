/**
 * The one way to reach a Durable Object: an instance's, one of its event relays, a sidecar's or a rate-limit
 * key's object, by name.
 */

import { expectWritesElsewhere } from "../db/request-d1";

// Instance and sidecar objects write D1 through their own binding: an API request that calls one reads
// from the primary afterwards, and its bookmark covers their writes (`db/request-d1.ts`).
export function instanceObject(env: Env, instanceId: string) {
  expectWritesElsewhere(env);
  return env.INSTANCE.get(env.INSTANCE.idFromName(instanceId));
}

/** Relay `index` of an instance's live events (docs/events.md, "Relays"). */
export function relayObject(env: Env, instanceId: string, index: number) {
  return env.EVENT_RELAY.get(env.EVENT_RELAY.idFromName(`${instanceId}:${index}`));
}

export function sidecarObject(env: Env, sidecarId: string) {
  expectWritesElsewhere(env);
  return env.SIDECAR.get(env.SIDECAR.idFromName(sidecarId));
}

/** The counter of one rate-limit key (`tenant:<id>`, `principal:<id>`, `address:<ip>`, …). */
export function rateLimiterObject(env: Env, key: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key));
}
