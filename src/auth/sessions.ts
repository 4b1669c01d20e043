/**
 * Sessions read straight from better-auth's tables, so that they batch with whatever else a request needs:
 * one D1 round trip. better-auth keeps every write: a session due for its sliding refresh, or expired, goes
 * through its `getSession`, which extends it or deletes it.
 */
import { eq, type SQLWrapper, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { session, user } from "../db/schema";
import type { SessionInfo, SessionSettings, SessionUser } from "./better-auth";

export type SignedIn = { user: SessionUser; session: SessionInfo };

/** The user id of the session `token`, as a subquery for queries batched beside the session's. */
export function sessionUserId(token: string | SQLWrapper) {
  return sql`(select ${session.userId} from ${session} where ${eq(session.token, token)})`;
}

/** The session and its user, for a batch (`signedInOf` reads their rows). */
export function sessionQueries(db: Db, token: string | SQLWrapper) {
  return [
    db.select().from(session).where(eq(session.token, token)).limit(1),
    db
      .select()
      .from(user)
      .where(eq(user.id, sessionUserId(token)))
      .limit(1),
  ] as const;
}

type SessionRows = readonly [(typeof session.$inferSelect)[], (typeof user.$inferSelect)[]];

/** A session token whose signature held, and what deciding on its rows needs. */
export type SessionCredential = {
  kind: "session";
  token: string;
  settings: SessionSettings;
  /** better-auth's "don't remember me": the session is not refreshed. */
  dontRemember: boolean;
  /** better-auth's own lookup, for a session it must refresh or end. */
  viaBetterAuth: () => Promise<SignedIn | null>;
};

/**
 * The signed-in user the rows show, or null. A live session not due for its refresh is taken as read, by
 * the rules of better-auth's `getSession`; any other session found is left to better-auth.
 */
export async function signedInOf(
  credential: SessionCredential,
  [sessions, users]: SessionRows,
  now = Date.now(),
): Promise<SignedIn | null> {
  const found = sessions[0];
  const owner = users[0];
  if (!found || !owner) return null;
  if (isTakenAsRead(credential, found, now)) return { session: found, user: owner };
  return credential.viaBetterAuth();
}

/** A live session not due for its sliding refresh: its row is the answer, with nothing to write. */
export function isTakenAsRead(
  credential: SessionCredential,
  found: Pick<SessionInfo, "expiresAt">,
  now = Date.now(),
): boolean {
  const { expiresInMs, updateAgeMs } = credential.settings;
  const expiresAt = found.expiresAt.getTime();
  const dueForRefresh = !credential.dontRemember && expiresAt - expiresInMs + updateAgeMs <= now;
  return expiresAt >= now && !dueForRefresh;
}
