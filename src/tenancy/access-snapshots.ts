/**
 * The access each credential was last found to have in each tenant, kept per isolate: what a safe request
 * (GET, HEAD) acts on while the fresh check of its access rides with its first read, in the same D1 round
 * trip (`RequestD1.carry`). A snapshot is never trusted alone: the response waits for that check, and a
 * check whose rows differ from the snapshot's in any way (a grant, a role, the member's status, the session)
 * sends the request again, checked first. So a revocation or a sign-out holds from the next request, and an
 * authorized read costs one round trip instead of two.
 */
import type { Credential } from "../auth/caller";
import { isTakenAsRead } from "../auth/sessions";
import { BoundedMap } from "../lib/bounded-map";
import { bytesToHex } from "../lib/hex";
import type { CallerAccess } from "./tenant-access";

/** Enough for the callers an isolate serves at once; the oldest is dropped first. */
const MAX_SNAPSHOTS = 1000;

export type AccessSnapshot = { fingerprint: string; resolved: CallerAccess };

const snapshots = new BoundedMap<string, AccessSnapshot>(MAX_SNAPSHOTS);

export function snapshotKey(credential: Credential, tenantId: string): string {
  const id = credential.kind === "agent" ? `agent:${bytesToHex(credential.digest)}` : `session:${credential.token}`;
  return `${id} ${tenantId}`;
}

/** The rows of an access check, exactly, as one string. */
export function fingerprintOf(results: readonly D1Result[]): string {
  return JSON.stringify(results.map((result) => result.results));
}

/**
 * Keeps what the check's `results` decided for `credential`, when the rows alone decided it: not a
 * session better-auth refreshed, or found for another token.
 */
export function rememberAccess(
  key: string,
  credential: Credential,
  results: readonly D1Result[],
  resolved: CallerAccess,
): void {
  const session = resolved.caller.session;
  if (credential.kind === "session" && !(session?.token === credential.token && isTakenAsRead(credential, session))) {
    return;
  }
  snapshots.set(key, { fingerprint: fingerprintOf(results), resolved });
}

export function forgetAccess(key: string): void {
  snapshots.delete(key);
}

/**
 * The snapshot to act on, or null: none, or its session has since expired or come due for its sliding
 * refresh (which only better-auth may do).
 */
export function usableSnapshot(key: string, credential: Credential, now = Date.now()): AccessSnapshot | null {
  const snapshot = snapshots.get(key);
  if (!snapshot) return null;
  if (credential.kind === "session") {
    const session = snapshot.resolved.caller.session;
    if (!session || !isTakenAsRead(credential, session, now)) return null;
  }
  return snapshot;
}
