/** The one way to reach a Durable Object: an instance's, a sidecar's or a rate-limit key's object, by name. */

export function instanceObject(env: Env, instanceId: string) {
  return env.INSTANCE.get(env.INSTANCE.idFromName(instanceId));
}

export function sidecarObject(env: Env, sidecarId: string) {
  return env.SIDECAR.get(env.SIDECAR.idFromName(sidecarId));
}

/** The counter of one rate-limit key (`tenant:<id>`, `principal:<id>`, `address:<ip>`, …). */
export function rateLimiterObject(env: Env, key: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key));
}
