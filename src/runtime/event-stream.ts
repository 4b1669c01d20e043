/**
 * A subscriber's SSE stream as the API opens it (docs/events.md, "Relays"): the instance's object serves it,
 * or names the relay that will, and the Worker then asks that relay.
 */
import { RELAY_HEADER, RELAY_INSTANCE_HEADER } from "./relay-routing";
import { instanceObject, relayObject } from "./stubs";

/** `url` carries the `?cursor=`, `headers` the `Last-Event-ID`: nothing else of the client's request. */
export async function openEventStream(
  env: Env,
  instanceId: string,
  url: string,
  headers: Headers,
  signal: AbortSignal,
): Promise<Response> {
  const res = await instanceObject(env, instanceId).fetch(new Request(url, { headers, signal }));
  const relay = res.headers.get(RELAY_HEADER);
  if (res.status !== 307 || relay === null) return res;
  const forwarded = new Headers(headers);
  forwarded.set(RELAY_HEADER, relay);
  forwarded.set(RELAY_INSTANCE_HEADER, instanceId);
  return relayObject(env, instanceId, Number(relay)).fetch(new Request(url, { headers: forwarded, signal }));
}
