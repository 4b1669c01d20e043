/** Principals of a tenant: how they are described, listed, invited, re-statused and deleted. */
import { and, count, eq, inArray, ne, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import {
  agent,
  agentInstance,
  agentSession,
  credential,
  principal,
  principalRole,
  type principalStatuses,
  role,
  user,
} from "../db/schema";
import { conflict, notFound } from "../errors";
import { newId } from "../lib/ids";
import { keepsAnOwner } from "./owners";

export type PrincipalRow = typeof principal.$inferSelect;
export type PrincipalStatus = (typeof principalStatuses)[number];
export type RoleRef = { id: string; name: string };
export type PrincipalView = PrincipalRow & { displayName: string; email: string | null; roles: RoleRef[] };

const agentRefs = (rows: PrincipalRow[]) => rows.filter((p) => p.kind === "agent").map((p) => p.refId);

/**
 * Who a principal is: a user's name and email; an agent definition's name; for an instance principal,
 * "<definition name> (instance)"; otherwise its ref id.
 */
export async function describePrincipals(db: Db, rows: PrincipalRow[]): Promise<PrincipalView[]> {
  if (rows.length === 0) return [];
  const userIds = rows.filter((p) => p.kind === "user").map((p) => p.refId);
  const agentIds = agentRefs(rows);
  const [users, agents, instances, roles] = await db.batch([
    db.select({ id: user.id, name: user.name, email: user.email }).from(user).where(inArray(user.id, userIds)),
    db.select({ id: agent.id, name: agent.name }).from(agent).where(inArray(agent.id, agentIds)),
    db
      .select({ id: agentInstance.id, name: agent.name })
      .from(agentInstance)
      .innerJoin(agent, eq(agent.id, agentInstance.agentId))
      .where(inArray(agentInstance.id, agentIds)),
    db
      .select({ principalId: principalRole.principalId, id: role.id, name: role.name })
      .from(principalRole)
      .innerJoin(role, eq(role.id, principalRole.roleId))
      .where(
        inArray(
          principalRole.principalId,
          rows.map((p) => p.id),
        ),
      )
      .orderBy(role.name),
  ]);
  const usersById = new Map(users.map((u) => [u.id, u]));
  const agentNames = new Map(agents.map((a) => [a.id, a.name]));
  const instanceNames = new Map(instances.map((i) => [i.id, `${i.name} (instance)`]));
  return rows.map((p) => {
    const u = p.kind === "user" ? usersById.get(p.refId) : undefined;
    const displayName = u?.name ?? agentNames.get(p.refId) ?? instanceNames.get(p.refId) ?? p.refId;
    const roleRefs = roles.filter((r) => r.principalId === p.id).map(({ id, name }) => ({ id, name }));
    return { ...p, displayName, email: u?.email ?? null, roles: roleRefs };
  });
}

export async function findPrincipal(db: Db, tenantId: string, principalId: string): Promise<PrincipalRow> {
  const [row] = await db
    .select()
    .from(principal)
    .where(and(eq(principal.id, principalId), eq(principal.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Principal not found");
  return row;
}

/** The id of a user's principal in a tenant, whatever its status; null when they have none. */
export async function getUserPrincipalId(db: Db, tenantId: string, userId: string): Promise<string | null> {
  const [row] = await db
    .select({ id: principal.id })
    .from(principal)
    .where(and(eq(principal.tenantId, tenantId), eq(principal.kind, "user"), eq(principal.refId, userId)))
    .limit(1);
  return row?.id ?? null;
}

export async function findPrincipalView(db: Db, tenantId: string, principalId: string): Promise<PrincipalView> {
  const [view] = await describePrincipals(db, [await findPrincipal(db, tenantId, principalId)]);
  if (!view) throw notFound("Principal not found");
  return view;
}

/** Lists principals; without a status filter, deactivated principals are left out. */
export async function listPrincipals(
  db: Db,
  tenantId: string,
  filter: { kind?: PrincipalRow["kind"] | undefined; status?: PrincipalStatus | undefined },
  page: PageQuery,
) {
  const where: (SQL | undefined)[] = [eq(principal.tenantId, tenantId)];
  if (filter.kind) where.push(eq(principal.kind, filter.kind));
  where.push(filter.status ? eq(principal.status, filter.status) : ne(principal.status, "deactivated"));
  const result = await paginate(
    page,
    { time: principal.createdAt, id: principal.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(principal)
        .where(and(...where, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
  return { data: await describePrincipals(db, result.data), nextCursor: result.nextCursor };
}

/** Invites an existing user: a principal with status `invited`, optionally with a role of this tenant. */
export async function inviteMember(
  db: Db,
  tenantId: string,
  input: { email: string; roleId?: string | undefined },
): Promise<PrincipalView> {
  const [invitee] = await db.select({ id: user.id }).from(user).where(eq(user.email, input.email)).limit(1);
  if (!invitee) throw notFound("No user found with that email");
  const [existing] = await db
    .select({ id: principal.id })
    .from(principal)
    .where(and(eq(principal.tenantId, tenantId), eq(principal.kind, "user"), eq(principal.refId, invitee.id)))
    .limit(1);
  if (existing) throw conflict("This user is already a member of the tenant or has been invited");

  const id = newId("principal");
  const insertPrincipal = db
    .insert(principal)
    .values({ id, tenantId, kind: "user", refId: invitee.id, status: "invited" });
  if (input.roleId) {
    await db.batch([insertPrincipal, db.insert(principalRole).values({ principalId: id, roleId: input.roleId })]);
  } else {
    await insertPrincipal;
  }
  return findPrincipalView(db, tenantId, id);
}

/**
 * Changes a principal's status. Demoting the last active owner is refused in the same statement
 * (409), so a tenant can never lock everybody out.
 */
export async function setPrincipalStatus(
  db: Db,
  tenantId: string,
  principalId: string,
  status: PrincipalStatus,
): Promise<PrincipalView> {
  await findPrincipal(db, tenantId, principalId);
  const guard = status === "active" ? undefined : keepsAnOwner(tenantId, principalId);
  const updated = await db
    .update(principal)
    .set({ status, updatedAt: new Date() })
    .where(and(eq(principal.id, principalId), eq(principal.tenantId, tenantId), guard))
    .returning({ id: principal.id });
  if (updated.length === 0) throw conflict("A tenant must keep at least one active owner");
  return findPrincipalView(db, tenantId, principalId);
}

/**
 * Hard-deletes a principal (its grants and role links cascade). A principal that created agents, backs
 * an instance or invoked a session is kept for the record: 409, deactivate it instead.
 */
export async function deletePrincipal(db: Db, tenantId: string, principalId: string): Promise<void> {
  await findPrincipal(db, tenantId, principalId);
  const [[agents], [instances], [sessions]] = await db.batch([
    db.select({ n: count() }).from(agent).where(eq(agent.creatorPrincipalId, principalId)),
    db.select({ n: count() }).from(agentInstance).where(eq(agentInstance.principalId, principalId)),
    db.select({ n: count() }).from(agentSession).where(eq(agentSession.principalId, principalId)),
  ]);
  const refs = [
    [agents?.n ?? 0, "agent definition"],
    [instances?.n ?? 0, "agent instance"],
    [sessions?.n ?? 0, "agent session"],
  ] as const;
  const held = refs.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}${n === 1 ? "" : "s"}`);
  if (held.length > 0) {
    throw conflict(`The principal is still referenced by ${held.join(", ")}; set its status to "deactivated" instead`);
  }
  // The principal's own credentials go with it: left behind (principal_id set null) they would turn into
  // tenant-wide credentials any agent could resolve. Same guard on both statements, one batch.
  const [, deleted] = await db.batch([
    db.delete(credential).where(and(eq(credential.principalId, principalId), keepsAnOwner(tenantId, principalId))),
    db
      .delete(principal)
      .where(and(eq(principal.id, principalId), eq(principal.tenantId, tenantId), keepsAnOwner(tenantId, principalId)))
      .returning({ id: principal.id }),
  ]);
  if (deleted.length === 0) throw conflict("A tenant must keep at least one active owner");
}
