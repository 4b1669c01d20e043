/** The signed-in user's view across tenants: memberships, invitations and what they can see. */
import { and, eq, inArray, ne, type SQL } from "drizzle-orm";
import type { AnySQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { agent, agentInstance, agentSession, principal, principalRole, role, tenant } from "../db/schema";
import { conflict, notFound } from "../errors";

const ofUser = (userId: string) => and(eq(principal.kind, "user"), eq(principal.refId, userId));
/** Joins the user's active membership onto a tenant-scoped table. */
const activeMemberIn = (userId: string, tenantColumn: AnySQLiteColumn) =>
  and(eq(principal.tenantId, tenantColumn), ofUser(userId), eq(principal.status, "active"));

async function rolesOf(db: Db, principalIds: string[]) {
  if (principalIds.length === 0) return new Map<string, { id: string; name: string }[]>();
  const rows = await db
    .select({ principalId: principalRole.principalId, id: role.id, name: role.name })
    .from(principalRole)
    .innerJoin(role, eq(role.id, principalRole.roleId))
    .where(inArray(principalRole.principalId, principalIds))
    .orderBy(role.name);
  const byPrincipal = new Map<string, { id: string; name: string }[]>();
  for (const r of rows) {
    const list = byPrincipal.get(r.principalId) ?? [];
    list.push({ id: r.id, name: r.name });
    byPrincipal.set(r.principalId, list);
  }
  return byPrincipal;
}

type MembershipRow = { principal: typeof principal.$inferSelect; tenantName: string; tenantSlug: string };

async function summarize(db: Db, rows: MembershipRow[]) {
  const roles = await rolesOf(
    db,
    rows.map((r) => r.principal.id),
  );
  return rows.map((r) => ({
    principalId: r.principal.id,
    tenantId: r.principal.tenantId,
    tenantName: r.tenantName,
    tenantSlug: r.tenantSlug,
    kind: r.principal.kind,
    status: r.principal.status,
    roles: roles.get(r.principal.id) ?? [],
  }));
}

const membershipColumns = { principal, tenantName: tenant.name, tenantSlug: tenant.slug };

/** Every `user` principal of this user (any status, or only invitations), with its tenant and roles. */
export async function listMyPrincipals(db: Db, userId: string, page: PageQuery, onlyInvited = false) {
  const where: (SQL | undefined)[] = [ofUser(userId)];
  if (onlyInvited) where.push(eq(principal.status, "invited"));
  const result = await paginate(
    page,
    { time: principal.createdAt, id: principal.id },
    (keyset, orderBy, limit) =>
      db
        .select(membershipColumns)
        .from(principal)
        .innerJoin(tenant, eq(tenant.id, principal.tenantId))
        .where(and(...where, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.principal.createdAt.getTime(), id: row.principal.id }),
  );
  return { data: await summarize(db, result.data), nextCursor: result.nextCursor };
}

export async function findMyMembership(db: Db, userId: string, principalId: string) {
  const rows = await db
    .select(membershipColumns)
    .from(principal)
    .innerJoin(tenant, eq(tenant.id, principal.tenantId))
    .where(and(eq(principal.id, principalId), ofUser(userId)));
  const [summary] = await summarize(db, rows);
  if (!summary) throw notFound("Membership not found");
  return summary;
}

async function findInvitation(db: Db, userId: string, principalId: string) {
  const [row] = await db
    .select()
    .from(principal)
    .where(and(eq(principal.id, principalId), ofUser(userId)))
    .limit(1);
  if (!row) throw notFound("Invitation not found");
  if (row.status !== "invited") throw conflict(`This invitation is not pending (membership is ${row.status})`);
  return row;
}

/** Accepting turns the invited principal active; only the invited user can do it. */
export async function acceptInvitation(db: Db, userId: string, principalId: string) {
  await findInvitation(db, userId, principalId);
  const [row] = await db
    .update(principal)
    .set({ status: "active", updatedAt: new Date() })
    .where(and(eq(principal.id, principalId), eq(principal.status, "invited")))
    .returning();
  if (!row) throw conflict("This invitation is not pending");
  return row;
}

/** Declining removes the invitation (returned); the tenant can invite again later. */
export async function declineInvitation(db: Db, userId: string, principalId: string) {
  const invitation = await findInvitation(db, userId, principalId);
  await db.delete(principal).where(and(eq(principal.id, principalId), eq(principal.status, "invited")));
  return invitation;
}

/** Agent definitions in every tenant where the user is an active member. */
export async function listMyAgents(db: Db, userId: string, page: PageQuery) {
  return paginate(
    page,
    { time: agent.createdAt, id: agent.id },
    (keyset, orderBy, limit) =>
      db
        .select({
          id: agent.id,
          tenantId: agent.tenantId,
          tenantName: tenant.name,
          name: agent.name,
          description: agent.description,
          status: agent.status,
          createdAt: agent.createdAt,
        })
        .from(agent)
        .innerJoin(principal, activeMemberIn(userId, agent.tenantId))
        .innerJoin(tenant, eq(tenant.id, agent.tenantId))
        .where(keyset)
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** Instances that have not stopped, in every tenant where the user is an active member. */
export async function listMyInstances(db: Db, userId: string, page: PageQuery) {
  return paginate(
    page,
    { time: agentInstance.createdAt, id: agentInstance.id },
    (keyset, orderBy, limit) =>
      db
        .select({
          id: agentInstance.id,
          tenantId: agentInstance.tenantId,
          tenantName: tenant.name,
          agentId: agentInstance.agentId,
          agentName: agent.name,
          address: agentInstance.address,
          status: agentInstance.status,
          createdAt: agentInstance.createdAt,
        })
        .from(agentInstance)
        .innerJoin(principal, activeMemberIn(userId, agentInstance.tenantId))
        .innerJoin(tenant, eq(tenant.id, agentInstance.tenantId))
        .innerJoin(agent, eq(agent.id, agentInstance.agentId))
        .where(and(ne(agentInstance.status, "stopped"), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** Sessions this user started (as the invoking principal), in tenants where they are still active. */
export async function listMySessions(db: Db, userId: string, page: PageQuery) {
  return paginate(
    page,
    { time: agentSession.createdAt, id: agentSession.id },
    (keyset, orderBy, limit) =>
      db
        .select({
          id: agentSession.id,
          tenantId: agentSession.tenantId,
          tenantName: tenant.name,
          agentId: agentSession.agentId,
          agentName: agent.name,
          status: agentSession.status,
          createdAt: agentSession.createdAt,
          endedAt: agentSession.endedAt,
        })
        .from(agentSession)
        .innerJoin(
          principal,
          and(eq(principal.id, agentSession.principalId), ofUser(userId), eq(principal.status, "active")),
        )
        .innerJoin(tenant, eq(tenant.id, agentSession.tenantId))
        .innerJoin(agent, eq(agent.id, agentSession.agentId))
        .where(keyset)
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}
