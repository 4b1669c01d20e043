/** A capability's name: `agent=git/2.43` → `agent`. */
export function capabilityName(cap: string): string {
  const eq = cap.indexOf("=");
  return eq < 0 ? cap : cap.slice(0, eq);
}

/**
 * The capabilities in effect: those the client asked for that we advertised (compared by name). Clients
 * may send capabilities we never offered (git ignores them); they take no effect here either.
 */
export function negotiatedCapabilities(requested: readonly string[], advertised: readonly string[]): Set<string> {
  const offered = new Set(advertised.map(capabilityName));
  const out = new Set<string>();
  for (const cap of requested) if (offered.has(capabilityName(cap))) out.add(capabilityName(cap));
  return out;
}

/** The value of a `name=value` capability the client sent (e.g. its `agent`), or null. */
export function capabilityValue(caps: readonly string[], name: string): string | null {
  for (const cap of caps)
    if (capabilityName(cap) === name && cap.length > name.length) return cap.slice(name.length + 1);
  return null;
}

/** True when `text` has a C0 control character or DEL (and, with `orSpace`, a space). */
export function hasControlChar(text: string, orSpace = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (orSpace && c === 0x20)) return true;
  }
  return false;
}
