/**
 * An agent's API token: given to its sidecar once, at deploy (`HarnessConfig.apiToken`), so the agent can
 * call the hub's REST API as its own instance principal while the instance runs. Only its SHA-256 is kept
 * (on the instance row); stopping the instance clears it.
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../db/client";
import { agentInstance } from "../db/schema";
import { digestsEqual, randomSecret, sha256 } from "../lib/secret-digest";

export const AGENT_TOKEN_PREFIX = "ahi_";

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

/** The agent a token authenticates, or null: unknown, or its instance no longer runs. */
export async function verifyAgentToken(db: Db, secret: string): Promise<AgentCaller | null> {
  if (!isAgentToken(secret) || secret.length > 256) return null;
  const digest = await sha256(secret);
  const [row] = await db
    .select({
      instanceId: agentInstance.id,
      principalId: agentInstance.principalId,
      tenantId: agentInstance.tenantId,
      agentId: agentInstance.agentId,
      sessionId: agentInstance.sessionId,
      hash: agentInstance.apiTokenHash,
    })
    .from(agentInstance)
    .where(
      and(eq(agentInstance.apiTokenHash, digest), inArray(agentInstance.status, ["deployed", "running", "updating"])),
    )
    .limit(1);
  if (!row?.hash || !digestsEqual(new Uint8Array(row.hash), digest)) return null;
  const { hash: _hash, ...caller } = row;
  return caller;
}
