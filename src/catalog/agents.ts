/**
 * Agent definitions: their content, role links, versions (each one a snapshot of the content) and
 * rollback, which restores a snapshot. Every multi-row write is one D1 batch.
 */
import { and, eq, inArray, ne, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { assertValidConditions } from "../authz/grants";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import {
  type AgentSnapshot,
  agent,
  agentInstance,
  agentRole,
  agentSession,
  type agentStatuses,
  agentVersion,
  type CredentialRequirement,
  type GrantRequirement,
  grant,
  principal,
  role,
} from "../db/schema";
import { badRequest, conflict, notFound } from "../errors";
import { newId as defaultNewId, type IdKind } from "../lib/ids";

export type AgentRow = typeof agent.$inferSelect;
export type AgentVersionRow = typeof agentVersion.$inferSelect;
export type AgentStatus = (typeof agentStatuses)[number];
export type RoleRef = { id: string; name: string };
export type AgentView = AgentRow & { roles: RoleRef[] };

type Json = Record<string, unknown>;

/** The content fields of a definition as a client sends them (`undefined` = not given). */
export type AgentContentInput = {
  name?: string | undefined;
  description?: string | null | undefined;
  systemPrompt?: string | null | undefined;
  contextConfig?: Json | null | undefined;
  initialState?: Json | null | undefined;
  modelConfig?: Json | null | undefined;
  capabilities?: Json | null | undefined;
  credentialRequirements?: CredentialRequirement[] | null | undefined;
  grantRequirements?: GrantRequirement[] | null | undefined;
  roleIds?: string[] | undefined;
};
export type CreateAgentInput = AgentContentInput & { name: string };

/** A permission a write would hand to the agent (through a role or a grant requirement). */
export type Permission = { resource: string; action: string };

export type AgentWriteOptions = {
  /**
   * Called with the permissions the write newly confers on the agent, before anything is written; it
   * throws to refuse (the routes pass `assertCanConfer`, so nobody hands an agent more than they hold).
   */
  confer?: (permissions: Permission[]) => void;
  /** Injectable so a test can force a failure in the middle of the creation batch. */
  newId?: (kind: IdKind) => string;
};

type Statement = BatchItem<"sqlite">;

async function runBatch(db: Db, statements: Statement[]): Promise<void> {
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

export async function findAgent(db: Db, tenantId: string, agentId: string): Promise<AgentRow> {
  const [row] = await db
    .select()
    .from(agent)
    .where(and(eq(agent.id, agentId), eq(agent.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Agent not found");
  return row;
}

// ---------------------------------------------------------------------------------------------
// Roles of a definition
// ---------------------------------------------------------------------------------------------

/** The roles linked to each agent, restricted to roles of the tenant, by name. */
export async function listAgentRoles(db: Db, tenantId: string, agentIds: string[]): Promise<Map<string, RoleRef[]>> {
  const byAgent = new Map<string, RoleRef[]>(agentIds.map((id) => [id, []]));
  if (agentIds.length === 0) return byAgent;
  const rows = await db
    .select({ agentId: agentRole.agentId, id: role.id, name: role.name })
    .from(agentRole)
    .innerJoin(role, eq(role.id, agentRole.roleId))
    .where(and(inArray(agentRole.agentId, agentIds), eq(role.tenantId, tenantId)))
    .orderBy(role.name);
  for (const { agentId, id, name } of rows) byAgent.get(agentId)?.push({ id, name });
  return byAgent;
}

/** Statements replacing the agent's role links with `roleIds` (already checked to be in the tenant). */
export function setAgentRoles(db: Db, agentId: string, roleIds: string[], now: Date): Statement[] {
  const statements: Statement[] = [db.delete(agentRole).where(eq(agentRole.agentId, agentId))];
  if (roleIds.length > 0) {
    statements.push(db.insert(agentRole).values(roleIds.map((roleId) => ({ agentId, roleId, createdAt: now }))));
  }
  return statements;
}

/** Checks that every role is in the tenant (400 otherwise) and returns the grants of those roles. */
async function grantsOfTenantRoles(db: Db, tenantId: string, roleIds: string[]): Promise<Permission[]> {
  if (roleIds.length === 0) return [];
  const found = await db
    .select({ id: role.id })
    .from(role)
    .where(and(inArray(role.id, roleIds), eq(role.tenantId, tenantId)));
  const known = new Set(found.map((r) => r.id));
  const missing = roleIds.filter((id) => !known.has(id));
  if (missing.length > 0) throw badRequest(`Roles not found in tenant: ${missing.join(", ")}`);
  return db
    .select({ resource: grant.resource, action: grant.action })
    .from(grant)
    .where(and(inArray(grant.roleId, roleIds), eq(grant.tenantId, tenantId)));
}

// ---------------------------------------------------------------------------------------------
// Snapshots and versions
// ---------------------------------------------------------------------------------------------

export function snapshotOf(row: AgentRow, roleIds: string[]): AgentSnapshot {
  return {
    name: row.name,
    description: row.description,
    systemPrompt: row.systemPrompt,
    contextConfig: row.contextConfig,
    initialState: row.initialState,
    modelConfig: row.modelConfig,
    capabilities: row.capabilities,
    credentialRequirements: row.credentialRequirements,
    grantRequirements: row.grantRequirements,
    roleIds,
  };
}

/** `current` with the given fields of `input` replaced; role ids de-duplicated. */
function applyInput(current: AgentSnapshot, input: AgentContentInput): AgentSnapshot {
  const pick = <K extends keyof AgentSnapshot>(key: K): AgentSnapshot[K] =>
    input[key] === undefined ? current[key] : (input[key] as AgentSnapshot[K]);
  return {
    name: pick("name"),
    description: pick("description"),
    systemPrompt: pick("systemPrompt"),
    contextConfig: pick("contextConfig"),
    initialState: pick("initialState"),
    modelConfig: pick("modelConfig"),
    capabilities: pick("capabilities"),
    credentialRequirements: pick("credentialRequirements"),
    grantRequirements: pick("grantRequirements"),
    roleIds: [...new Set(pick("roleIds"))],
  };
}

/** The agent columns holding a snapshot's content. */
function contentColumns(s: AgentSnapshot) {
  return {
    name: s.name,
    description: s.description,
    systemPrompt: s.systemPrompt,
    contextConfig: s.contextConfig,
    initialState: s.initialState,
    modelConfig: s.modelConfig,
    capabilities: s.capabilities,
    credentialRequirements: s.credentialRequirements,
    grantRequirements: s.grantRequirements,
  };
}

/** A statement recording `snapshot` as the active version `version` of the agent. */
export function createVersionSnapshot(
  db: Db,
  agentId: string,
  version: string,
  snapshot: AgentSnapshot,
  now: Date,
  newId: (kind: IdKind) => string = defaultNewId,
): Statement {
  return db
    .insert(agentVersion)
    .values({ id: newId("agentVersion"), agentId, version, status: "active", snapshot, createdAt: now });
}

/** The number after the highest version ever recorded (not after the current one: rollback moves back). */
async function nextVersion(db: Db, agentId: string): Promise<string> {
  const [row] = await db
    .select({ max: sql<number | null>`max(cast(${agentVersion.version} as integer))` })
    .from(agentVersion)
    .where(eq(agentVersion.agentId, agentId));
  return String((row?.max ?? 0) + 1);
}

export async function listAgentVersions(db: Db, tenantId: string, agentId: string, page: PageQuery) {
  await findAgent(db, tenantId, agentId);
  return paginate(
    page,
    { time: agentVersion.createdAt, id: agentVersion.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(agentVersion)
        .where(and(eq(agentVersion.agentId, agentId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

export async function getAgentVersion(db: Db, agentId: string, version: string): Promise<AgentVersionRow | null> {
  const [row] = await db
    .select()
    .from(agentVersion)
    .where(and(eq(agentVersion.agentId, agentId), eq(agentVersion.version, version)))
    .limit(1);
  return row ?? null;
}

export async function findAgentVersion(
  db: Db,
  tenantId: string,
  agentId: string,
  version: string,
): Promise<AgentVersionRow> {
  await findAgent(db, tenantId, agentId);
  const row = await getAgentVersion(db, agentId, version);
  if (!row) throw notFound("Version not found");
  return row;
}

// ---------------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------------

export async function findAgentView(db: Db, tenantId: string, agentId: string): Promise<AgentView> {
  const row = await findAgent(db, tenantId, agentId);
  const roles = await listAgentRoles(db, tenantId, [row.id]);
  return { ...row, roles: roles.get(row.id) ?? [] };
}

export async function listAgents(
  db: Db,
  tenantId: string,
  filter: { status?: AgentStatus | undefined },
  page: PageQuery,
) {
  const where: (SQL | undefined)[] = [eq(agent.tenantId, tenantId)];
  if (filter.status) where.push(eq(agent.status, filter.status));
  const result = await paginate(
    page,
    { time: agent.createdAt, id: agent.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(agent)
        .where(and(...where, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
  const roles = await listAgentRoles(
    db,
    tenantId,
    result.data.map((a) => a.id),
  );
  return { data: result.data.map((a) => ({ ...a, roles: roles.get(a.id) ?? [] })), nextCursor: result.nextCursor };
}

const requirementKey = (r: GrantRequirement) => JSON.stringify([r.resource, r.action, r.effect ?? "allow", r.source]);

/**
 * Validates `next` against the tenant (roles exist, grant-requirement conditions are understood) and
 * returns what it confers beyond `current`: the grants of newly linked roles and new grant requirements.
 */
async function checkContent(
  db: Db,
  tenantId: string,
  current: AgentSnapshot | null,
  next: AgentSnapshot,
): Promise<Permission[]> {
  for (const r of next.grantRequirements ?? []) assertValidConditions(r.conditions);
  const linked = new Set(current?.roleIds ?? []);
  const held = new Set((current?.grantRequirements ?? []).map(requirementKey));
  const roleGrants = await grantsOfTenantRoles(
    db,
    tenantId,
    next.roleIds.filter((id) => !linked.has(id)),
  );
  const requirements = (next.grantRequirements ?? [])
    .filter((r) => !held.has(requirementKey(r)))
    .map(({ resource, action }) => ({ resource, action }));
  return [...roleGrants, ...requirements];
}

/**
 * Creates a definition in one batch: the agent, its version "1" with a snapshot, its role links and
 * the creator's `agent-state:<id>` read grant. A failure anywhere leaves nothing behind.
 */
export async function createAgent(
  db: Db,
  tenantId: string,
  creatorPrincipalId: string,
  input: CreateAgentInput,
  options: AgentWriteOptions = {},
): Promise<AgentView> {
  const newId = options.newId ?? defaultNewId;
  const empty: AgentSnapshot = {
    name: input.name,
    description: null,
    systemPrompt: null,
    contextConfig: null,
    initialState: null,
    modelConfig: null,
    capabilities: null,
    credentialRequirements: null,
    grantRequirements: null,
    roleIds: [],
  };
  const snapshot = applyInput(empty, input);
  options.confer?.(await checkContent(db, tenantId, null, snapshot));

  const now = new Date();
  const id = newId("agent");
  await runBatch(db, [
    db.insert(agent).values({
      id,
      tenantId,
      creatorPrincipalId,
      ...contentColumns(snapshot),
      currentVersion: "1",
      status: "deployed",
      createdAt: now,
      updatedAt: now,
    }),
    createVersionSnapshot(db, id, "1", snapshot, now, newId),
    ...setAgentRoles(db, id, snapshot.roleIds, now),
    db.insert(grant).values({
      id: newId("grant"),
      tenantId,
      principalId: creatorPrincipalId,
      resource: `agent-state:${id}`,
      action: "read",
      effect: "allow",
      origin: "creator",
      createdAt: now,
      updatedAt: now,
    }),
  ]);
  return findAgentView(db, tenantId, id);
}

/** Statements making `snapshot` the agent's content and `version` its only active version. */
function restoreStatements(
  db: Db,
  agentId: string,
  snapshot: AgentSnapshot,
  version: string,
  rolesChanged: boolean,
  now: Date,
): Statement[] {
  return [
    db
      .update(agent)
      .set({ ...contentColumns(snapshot), currentVersion: version, updatedAt: now })
      .where(eq(agent.id, agentId)),
    db
      .update(agentVersion)
      .set({ status: "inactive" })
      .where(and(eq(agentVersion.agentId, agentId), eq(agentVersion.status, "active"))),
    ...(rolesChanged ? setAgentRoles(db, agentId, snapshot.roleIds, now) : []),
  ];
}

/**
 * Every update, even one that changes nothing, records the next version with a snapshot of the resulting
 * content; the previous version becomes inactive. Running instances keep the content they were launched
 * with.
 */
export async function updateAgent(
  db: Db,
  tenantId: string,
  agentId: string,
  patch: AgentContentInput,
  options: AgentWriteOptions = {},
): Promise<AgentView> {
  const row = await findAgent(db, tenantId, agentId);
  const roles = await listAgentRoles(db, tenantId, [agentId]);
  const current = snapshotOf(
    row,
    (roles.get(agentId) ?? []).map((r) => r.id),
  );
  const next = applyInput(current, patch);
  options.confer?.(await checkContent(db, tenantId, current, next));

  const now = new Date();
  const version = await nextVersion(db, agentId);
  // A concurrent update picking the same number fails on the (agent, version) unique index: 409, no change.
  await runBatch(db, [
    ...restoreStatements(db, agentId, next, version, patch.roleIds !== undefined, now),
    createVersionSnapshot(db, agentId, version, next, now),
  ]);
  return findAgentView(db, tenantId, agentId);
}

/**
 * Restores the content (and roles) of version `version` and makes it the current, active version.
 * No new version is recorded: `currentVersion` names the version whose snapshot the content now
 * equals, and the next update takes the number after the highest one. Roles deleted since the
 * snapshot are left out.
 */
export async function rollbackAgent(
  db: Db,
  tenantId: string,
  agentId: string,
  version: string,
  options: AgentWriteOptions = {},
): Promise<AgentView> {
  const row = await findAgent(db, tenantId, agentId);
  const target = await getAgentVersion(db, agentId, version);
  if (!target) throw badRequest("Target version not found");
  if (!target.snapshot) throw conflict("Target version has no snapshot to restore");
  const roles = await listAgentRoles(db, tenantId, [agentId]);
  const current = snapshotOf(
    row,
    (roles.get(agentId) ?? []).map((r) => r.id),
  );
  const wanted = target.snapshot.roleIds;
  const stillThere = wanted.length
    ? await db
        .select({ id: role.id })
        .from(role)
        .where(and(inArray(role.id, wanted), eq(role.tenantId, tenantId)))
    : [];
  const kept = new Set(stillThere.map((r) => r.id));
  const restored: AgentSnapshot = { ...target.snapshot, roleIds: wanted.filter((id) => kept.has(id)) };
  options.confer?.(await checkContent(db, tenantId, current, restored));

  const now = new Date();
  await runBatch(db, [
    ...restoreStatements(db, agentId, restored, version, true, now),
    db.update(agentVersion).set({ status: "active" }).where(eq(agentVersion.id, target.id)),
  ]);
  return findAgentView(db, tenantId, agentId);
}

/**
 * Stops a definition (`DELETE` is a soft delete: the row, its versions and its history stay, with
 * status `stopped`). In one batch: its running instances are stopped, its open sessions ended and the
 * instances' principals deactivated, so they lose access at once. Deleting twice is harmless.
 */
/** Stops the definition and its live instances in D1; returns the instances the caller must undeploy. */
export async function deleteAgent(db: Db, tenantId: string, agentId: string): Promise<string[]> {
  await findAgent(db, tenantId, agentId);
  const now = new Date();
  const running = and(eq(agentInstance.agentId, agentId), ne(agentInstance.status, "stopped"));
  const live = await db.select({ id: agentInstance.id }).from(agentInstance).where(running);
  await runBatch(db, [
    db
      .update(principal)
      .set({ status: "deactivated", updatedAt: now })
      .where(
        and(
          eq(principal.tenantId, tenantId),
          inArray(principal.id, db.select({ id: agentInstance.principalId }).from(agentInstance).where(running)),
        ),
      ),
    db
      .update(agentSession)
      .set({ status: "ended", endedAt: now, updatedAt: now })
      .where(and(eq(agentSession.agentId, agentId), ne(agentSession.status, "ended"))),
    db
      .update(agentInstance)
      .set({
        status: "stopped",
        sessionId: null,
        stopReason: "agent_deleted",
        endedAt: now,
        updatedAt: now,
        apiTokenHash: null,
      })
      .where(running),
    db.update(agent).set({ status: "stopped", updatedAt: now }).where(eq(agent.id, agentId)),
  ]);
  return live.map((i) => i.id);
}
