/** The one way to reach a Durable Object: an instance's or a sidecar's object, named by its id. */

export function instanceObject(env: Env, instanceId: string) {
  return env.INSTANCE.get(env.INSTANCE.idFromName(instanceId));
}

export function sidecarObject(env: Env, sidecarId: string) {
  return env.SIDECAR.get(env.SIDECAR.idFromName(sidecarId));
}
