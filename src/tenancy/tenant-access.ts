/**
 * The one tenant loader: what every tenant-scoped request needs — the tenant, the principal acting in it
 * and that principal's unexpired grants (direct and through roles) — in one D1 round trip. Sessions act
 * as the user's principal; git tokens as the user's or as the principal that minted them.
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import { defaultConditionRegistry } from "../authz/conditions";
import { evaluateGrants } from "../authz/evaluate";
import { grantsOfPrincipalQuery, toGrantRule } from "../authz/grant-store";
import type { GrantRule } from "../authz/types";
import type { Db } from "../db/client";
import { principal, tenant } from "../db/schema";
import { forbidden, notFound } from "../errors";
import type { PrincipalRow } from "./principals";
import type { TenantRow } from "./tenants";

/** Who acts: a user (their `user` principal in the tenant) or one principal by id. */
export type Actor = { userId: string } | { principalId: string };

export type TenantAccess = { tenant: TenantRow; principal: PrincipalRow; grants: GrantRule[] };

/** The tenant and the actor's principal as found (either may be missing); grants only when it is active. */
export async function loadTenantAccess(
  db: Db,
  tenantId: string,
  actor: Actor,
  now = new Date(),
): Promise<{ tenant: TenantRow | null; principal: PrincipalRow | null; grants: GrantRule[] }> {
  const isActor: SQL | undefined =
    "principalId" in actor
      ? and(eq(principal.id, actor.principalId), eq(principal.tenantId, tenantId))
      : and(eq(principal.tenantId, tenantId), eq(principal.kind, "user"), eq(principal.refId, actor.userId));
  const activeActorId = sql`(select ${principal.id} from ${principal} where ${and(isActor, eq(principal.status, "active"))})`;
  // No joins inside the batch: D1 batch results are keyed by column name, so joined tables would collide.
  const [tenants, principals, grantRows] = await db.batch([
    db.select().from(tenant).where(eq(tenant.id, tenantId)),
    db.select().from(principal).where(isActor).limit(1),
    grantsOfPrincipalQuery(db, tenantId, activeActorId, now),
  ]);
  return { tenant: tenants[0] ?? null, principal: principals[0] ?? null, grants: grantRows.map(toGrantRule) };
}

/**
 * A signed-in user's access to a tenant. A tenant the user does not belong to is a 404, exactly like one
 * that does not exist, so ids of other tenants reveal nothing; a pending or inactive membership is a 403.
 */
export async function memberAccess(db: Db, tenantId: string, userId: string): Promise<TenantAccess> {
  const { tenant: found, principal: member, grants } = await loadTenantAccess(db, tenantId, { userId });
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
export async function agentAccess(
  db: Db,
  tenantId: string,
  agent: { tenantId: string; principalId: string },
): Promise<TenantAccess> {
  if (agent.tenantId !== tenantId) throw notFound("Tenant not found");
  const {
    tenant: found,
    principal: self,
    grants,
  } = await loadTenantAccess(db, tenantId, {
    principalId: agent.principalId,
  });
  if (!found || !self) throw notFound("Tenant not found");
  if (self.status !== "active") throw forbidden("This agent's principal is not active");
  return { tenant: found, principal: self, grants };
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
