/**
 * Who calls: a signed-in user (a better-auth session, by cookie or `Authorization: Bearer`) or an agent with
 * its own API token (`Bearer ahi_…`). The credential is read and its signature checked from the headers
 * alone; its rows then come in the same D1 batch as the tenant's (`tenancy/tenant-access.ts`), or alone.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { compiledBatch } from "../db/compiled";
import { sha256 } from "../lib/secret-digest";
import { type AgentCaller, agentCallerOf, agentTokenQuery, isAgentToken, MAX_AGENT_TOKEN_LENGTH } from "./agent-tokens";
import { getAuth, type SessionInfo, type SessionUser, sessionSettingsOf } from "./better-auth";
import { bearerOf, isDontRemember, sessionTokenOf } from "./session-token";
import { type SessionCredential, sessionQueries, signedInOf } from "./sessions";

export type Credential = SessionCredential | { kind: "agent"; digest: Uint8Array };

export type Caller =
  | { user: SessionUser; session: SessionInfo; agent: null }
  | { user: null; session: null; agent: AgentCaller };

/** The credential a request carries, or null: none, or a session token whose signature fails. */
export async function credentialOf(env: Env, db: Db, headers: Headers): Promise<Credential | null> {
  const bearer = bearerOf(headers.get("authorization"));
  if (bearer && isAgentToken(bearer)) {
    return bearer.length > MAX_AGENT_TOKEN_LENGTH ? null : { kind: "agent", digest: await sha256(bearer) };
  }
  if (!bearer && !headers.has("cookie")) return null;
  const settings = await sessionSettingsOf(env, db);
  const token = await sessionTokenOf(headers, settings);
  if (!token) return null;
  return {
    kind: "session",
    token,
    settings,
    dontRemember: await isDontRemember(headers, settings),
    viaBetterAuth: async () => (await getAuth(env, db).api.getSession({ headers })) ?? null,
  };
}

// Built once, bound per request (`db/compiled.ts`).
const sessionBatch = compiledBatch((db) => sessionQueries(db, sql.placeholder("token")));
const agentBatch = compiledBatch((db) => [agentTokenQuery(db, sql.placeholder("digest"))]);

/** The caller alone, off tenant routes: one D1 round trip. */
export async function loadCaller(db: Db, credential: Credential): Promise<Caller | null> {
  if (credential.kind === "agent") {
    const [agents] = await agentBatch.run(db, { digest: credential.digest });
    const agent = agentCallerOf(agents, credential.digest);
    return agent && { user: null, session: null, agent };
  }
  const rows = await sessionBatch.run(db, { token: credential.token });
  const signedIn = await signedInOf(credential, rows);
  return signedIn && { ...signedIn, agent: null };
}
