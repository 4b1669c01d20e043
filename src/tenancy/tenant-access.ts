/**
 * The one tenant loader: what every tenant-scoped request needs — the tenant, the principal acting in it
 * and that principal's unexpired grants (direct and through roles) — in one D1 round trip, batched with the
 * caller's own rows on API requests. Sessions act as the user's principal, agent tokens as their instance's,
 * git tokens as the user's or as the principal that minted them.
 */
import { and, eq, type SQLWrapper, sql } from "drizzle-orm";
import { type AgentCaller, agentCallerOf, agentPrincipalId, agentTokenQuery } from "../auth/agent-tokens";
import type { Caller, Credential } from "../auth/caller";
import { sessionQueries, sessionUserId, signedInOf } from "../auth/sessions";
import { defaultConditionRegistry } from "../authz/conditions";
import { evaluateGrants } from "../authz/evaluate";
import { type GrantRow, grantsOfPrincipalQuery, toGrantRule } from "../authz/grant-store";
import type { GrantRule } from "../authz/types";
import type { Db } from "../db/client";
import { compiledBatch } from "../db/compiled";
import { principal, tenant } from "../db/schema";
import { forbidden, notFound } from "../errors";
import type { PrincipalRow } from "./principals";
import type { TenantRow } from "./tenants";

/** Who acts: a user (their `user` principal in the tenant) or one principal by id. */
export type Actor = { userId: string } | { principalId: string };

export type TenantAccess = { tenant: TenantRow; principal: PrincipalRow; grants: GrantRule[] };

type LoadedAccess = { tenant: TenantRow | null; principal: PrincipalRow | null; grants: GrantRule[] };

/** The actor as the statements see it: either id may be a subquery or a placeholder. */
type ActorSql = { userId: string | SQLWrapper } | { principalId: string | SQLWrapper };

/** The tenant, the actor's principal and, only while that principal is active, its grants: for a batch. */
function tenantAccessQueries(db: Db, tenantId: string | SQLWrapper, actor: ActorSql, now: Date | SQLWrapper) {
  const isActor =
    "principalId" in actor
      ? and(eq(principal.id, actor.principalId), eq(principal.tenantId, tenantId))
      : and(eq(principal.tenantId, tenantId), eq(principal.kind, "user"), eq(principal.refId, actor.userId));
  const activeActorId = sql`(select ${principal.id} from ${principal} where ${and(isActor, eq(principal.status, "active"))})`;
  // No joins inside the batch: D1 batch results are keyed by column name, so joined tables would collide.
  return [
    db.select().from(tenant).where(eq(tenant.id, tenantId)),
    db.select().from(principal).where(isActor).limit(1),
    grantsOfPrincipalQuery(db, tenantId, activeActorId, now),
  ] as const;
}

// What every tenant route runs, built once (`db/compiled.ts`); bound per request with these values.
const TENANT = sql.placeholder("tenantId");
const NOW = sql.placeholder("now");
const TOKEN = sql.placeholder("token");
const DIGEST = sql.placeholder("digest");
const USER = sql.placeholder("userId");
const PRINCIPAL = sql.placeholder("principalId");

const sessionAccessBatch = compiledBatch((db) => [
  ...sessionQueries(db, TOKEN),
  ...tenantAccessQueries(db, TENANT, { userId: sessionUserId(TOKEN) }, NOW),
]);
const agentAccessBatch = compiledBatch((db) => [
  agentTokenQuery(db, DIGEST),
  ...tenantAccessQueries(db, TENANT, { principalId: agentPrincipalId(DIGEST) }, NOW),
]);
const userAccessBatch = compiledBatch((db) => tenantAccessQueries(db, TENANT, { userId: USER }, NOW));
const principalAccessBatch = compiledBatch((db) => tenantAccessQueries(db, TENANT, { principalId: PRINCIPAL }, NOW));

function loadedAccessOf([tenants, principals, grantRows]: readonly [
  TenantRow[],
  PrincipalRow[],
  GrantRow[],
]): LoadedAccess {
  return { tenant: tenants[0] ?? null, principal: principals[0] ?? null, grants: grantRows.map(toGrantRule) };
}

/** The tenant and the actor's principal as found (either may be missing); grants only when it is active. */
export async function loadTenantAccess(
  db: Db,
  tenantId: string,
  actor: Actor,
  now = new Date(),
): Promise<LoadedAccess> {
  const values = { tenantId, now: now.getTime() };
  return loadedAccessOf(
    "principalId" in actor
      ? await principalAccessBatch.run(db, { ...values, principalId: actor.principalId })
      : await userAccessBatch.run(db, { ...values, userId: actor.userId }),
  );
}

/**
 * A signed-in user's access to a tenant. A tenant the user does not belong to is a 404, exactly like one
 * that does not exist, so ids of other tenants reveal nothing; a pending or inactive membership is a 403.
 */
function memberAccessOf({ tenant: found, principal: member, grants }: LoadedAccess): TenantAccess {
  if (!found || !member) throw notFound("Tenant not found");
  if (member.status === "invited") {
    throw forbidden(
      `Your invitation to this tenant is pending; accept it with POST /api/me/invitations/${member.id}/accept`,
    );
  }
  if (member.status !== "active") throw forbidden("Your membership in this tenant is not active");
  return { tenant: found, principal: member, grants };
}

/** An agent's access with its own API token: only its instance's tenant (404 for any other), as its principal. */
function agentAccessOf(tenantId: string, agent: AgentCaller, loaded: LoadedAccess): TenantAccess {
  const { tenant: found, principal: self, grants } = loaded;
  if (agent.tenantId !== tenantId || !found || !self) throw notFound("Tenant not found");
  if (self.status !== "active") throw forbidden("This agent's principal is not active");
  return { tenant: found, principal: self, grants };
}

export type CallerAccess = { caller: Caller; access: TenantAccess };

/**
 * What authorizes a request on a tenant route: the credential's rows and the tenant's in one batch, the
 * acting principal found through the credential by subquery. `settle` reads the batch's results: null when
 * the credential authenticates no one; 404 or 403 (as above) when the caller may not act in this tenant.
 */
export type AccessCheck = {
  statements: D1PreparedStatement[];
  settle(results: D1Result[]): Promise<CallerAccess | null>;
};

export function accessCheck(db: Db, tenantId: string, credential: Credential, now = new Date()): AccessCheck {
  if (credential.kind === "agent") {
    const { digest } = credential;
    return {
      statements: agentAccessBatch.statements(db, { digest, tenantId, now: now.getTime() }),
      settle: async (results) => {
        const [agents, ...rows] = agentAccessBatch.rows(results);
        const agent = agentCallerOf(agents, digest);
        if (!agent) return null;
        return {
          caller: { user: null, session: null, agent },
          access: agentAccessOf(tenantId, agent, loadedAccessOf(rows)),
        };
      },
    };
  }
  return {
    statements: sessionAccessBatch.statements(db, { token: credential.token, tenantId, now: now.getTime() }),
    settle: async (results) => {
      const [sessions, users, ...rows] = sessionAccessBatch.rows(results);
      const signedIn = await signedInOf(credential, [sessions, users]);
      if (!signedIn) return null;
      return { caller: { ...signedIn, agent: null }, access: memberAccessOf(loadedAccessOf(rows)) };
    },
  };
}

/** The caller and its access to the tenant (`accessCheck`) in one D1 round trip. */
export async function callerAccess(
  db: Db,
  tenantId: string,
  credential: Credential,
  now = new Date(),
): Promise<CallerAccess | null> {
  const check = accessCheck(db, tenantId, credential, now);
  return check.settle(await db.$client.batch(check.statements));
}

/**
 * A child tenant needs `tenant:<parent>` manage in the parent. A parent the user is not an active member
 * of is a 404, like one that does not exist.
 */
export async function assertMayCreateChild(db: Db, parentId: string, userId: string): Promise<void> {
  const { principal: member, grants } = await loadTenantAccess(db, parentId, { userId });
  if (member?.status !== "active") throw notFound("Parent tenant not found");
  const ctx = { now: Date.now(), principalId: member.id, tenantId: parentId };
  if (!evaluateGrants(grants, `tenant:${parentId}`, "manage", ctx, defaultConditionRegistry).allowed) {
    throw forbidden("Creating a child tenant needs manage on the parent tenant");
  }
}
