/**
 * An agent's API token: given to its sidecar once, at deploy (`HarnessConfig.apiToken`), so the agent can
 * call the hub's REST API as its own instance principal while the instance runs. Only its SHA-256 is kept
 * (on the instance row); stopping the instance clears it.
 */
import { and, eq, inArray, type SQLWrapper, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { agentInstance } from "../db/schema";
import { digestsEqual, randomSecret, sha256 } from "../lib/secret-digest";

export const AGENT_TOKEN_PREFIX = "ahi_";
/** Longer bearer values are no token of ours: refused before hashing. */
export const MAX_AGENT_TOKEN_LENGTH = 256;
/** Instance states in which its token works. */
const LIVE = ["deployed", "running", "updating"] as const;

/** The agent the token belongs to, acting as its instance's principal. */
export type AgentCaller = {
  instanceId: string;
  principalId: string;
  tenantId: string;
  agentId: string;
  sessionId: string | null;
};

export async function mintAgentToken(): Promise<{ secret: string; hash: Uint8Array }> {
  const secret = randomSecret(AGENT_TOKEN_PREFIX);
  return { secret, hash: await sha256(secret) };
}

export function isAgentToken(secret: string): boolean {
  return secret.startsWith(AGENT_TOKEN_PREFIX);
}

/** The running instance whose token has this digest, for a batch (`agentCallerOf` reads its rows). */
export function agentTokenQuery(db: Db, digest: Uint8Array | SQLWrapper) {
  return db
    .select({
      instanceId: agentInstance.id,
      principalId: agentInstance.principalId,
      tenantId: agentInstance.tenantId,
      agentId: agentInstance.agentId,
      sessionId: agentInstance.sessionId,
      hash: agentInstance.apiTokenHash,
    })
    .from(agentInstance)
    .where(and(eq(agentInstance.apiTokenHash, digest), inArray(agentInstance.status, LIVE)))
    .limit(1);
}

/** The principal of the running instance whose token has this digest, as a subquery for batched queries. */
export function agentPrincipalId(digest: Uint8Array | SQLWrapper) {
  return sql`(select ${agentInstance.principalId} from ${agentInstance} where ${and(eq(agentInstance.apiTokenHash, digest), inArray(agentInstance.status, LIVE))})`;
}

/** The agent the token authenticates, or null: unknown, or its instance no longer runs. */
export function agentCallerOf(
  rows: Awaited<ReturnType<typeof agentTokenQuery>>,
  digest: Uint8Array,
): AgentCaller | null {
  const [row] = rows;
  if (!row?.hash || !digestsEqual(new Uint8Array(row.hash), digest)) return null;
  const { hash: _hash, ...caller } = row;
  return caller;
}
