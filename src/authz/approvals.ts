/**
 * Approvals: what an agent asked for when a grant said `ask`, waiting for a person. An agent's tool call
 * (a `gate.request` from its sidecar) or an API request made with its token creates one; someone holding
 * `approval:*` manage approves it (`once`: this request goes ahead; `always`: an allow grant is made for
 * the agent, so it is not asked again) or rejects it with a message. A decision is final; an approval
 * nobody decides expires after APPROVAL_TTL_MS.
 */
import { and, eq, gt, inArray, isNull, lte, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { approval, type approvalScopes, type approvalStatuses, grant, principal } from "../db/schema";
import { ApiError, notFound } from "../errors";
import { newId } from "../lib/ids";
import { defaultConditionRegistry } from "./conditions";
import { evaluateGrants } from "./evaluate";
import { collectGrants } from "./grant-store";

/** An approval nobody decides within this time expires (the agent is told, and stops waiting). */
export const APPROVAL_TTL_MS = 60 * 60 * 1000;

export type ApprovalRow = typeof approval.$inferSelect;
export type ApprovalStatus = (typeof approvalStatuses)[number];
export type ApprovalScope = (typeof approvalScopes)[number];

/** A pending approval past its expiry reads as expired, before any pass has marked it. */
export function approvalStatus(row: ApprovalRow, now = Date.now()): ApprovalStatus {
  if (row.status === "pending" && row.expiresAt && row.expiresAt.getTime() <= now) return "expired";
  return row.status;
}

export type NewApproval = {
  tenantId: string;
  principalId: string;
  agentId: string;
  instanceId: string;
  sessionId: string | null;
  resource: string;
  action: string;
  context: Record<string, unknown> | null;
  requestKey?: string | null;
  gateRequestId?: string | null;
};

export async function createApproval(db: Db, input: NewApproval, now = Date.now()): Promise<ApprovalRow> {
  const [row] = await db
    .insert(approval)
    .values({
      id: newId("approval"),
      ...input,
      requestKey: input.requestKey ?? null,
      gateRequestId: input.gateRequestId ?? null,
      status: "pending",
      createdAt: new Date(now),
      expiresAt: new Date(now + APPROVAL_TTL_MS),
    })
    .returning();
  if (!row) throw new Error("Approval insert returned no row");
  return row;
}

export async function findApproval(db: Db, tenantId: string, approvalId: string): Promise<ApprovalRow> {
  const [row] = await db
    .select()
    .from(approval)
    .where(and(eq(approval.id, approvalId), eq(approval.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Approval not found");
  return row;
}

export type ApprovalFilter = {
  status?: ApprovalStatus | undefined;
  instanceId?: string | undefined;
  agentId?: string | undefined;
};

/** The status filter as SQL: `pending` and `expired` depend on the time as well as the row. */
function statusIs(status: ApprovalStatus, now: number): SQL | undefined {
  const at = new Date(now);
  if (status === "pending")
    return and(eq(approval.status, "pending"), or(isNull(approval.expiresAt), gt(approval.expiresAt, at)));
  if (status === "expired")
    return or(eq(approval.status, "expired"), and(eq(approval.status, "pending"), lte(approval.expiresAt, at)));
  return eq(approval.status, status);
}

export function listApprovals(
  db: Db,
  tenantIds: readonly string[],
  filter: ApprovalFilter,
  page: PageQuery,
  now = Date.now(),
) {
  return paginate(
    page,
    { time: approval.createdAt, id: approval.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(approval)
        .where(
          and(
            inArray(approval.tenantId, [...tenantIds]),
            filter.status ? statusIs(filter.status, now) : undefined,
            filter.instanceId ? eq(approval.instanceId, filter.instanceId) : undefined,
            filter.agentId ? eq(approval.agentId, filter.agentId) : undefined,
            keyset,
          ),
        )
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** The tenants where a user is an active member holding `approval:*` manage: whose approvals they decide. */
export async function tenantsDecidedBy(db: Db, userId: string, ip: string | null, now = Date.now()): Promise<string[]> {
  const memberships = await db
    .select({ id: principal.id, tenantId: principal.tenantId })
    .from(principal)
    .where(and(eq(principal.kind, "user"), eq(principal.refId, userId), eq(principal.status, "active")));
  const deciding: string[] = [];
  for (const m of memberships) {
    const grants = await collectGrants(db, m.tenantId, m.id, new Date(now));
    const ctx = { now, principalId: m.id, tenantId: m.tenantId, ip };
    if (evaluateGrants(grants, "approval:*", "manage", ctx, defaultConditionRegistry).allowed)
      deciding.push(m.tenantId);
  }
  return deciding;
}

export type Decision =
  | { status: "approved"; scope: ApprovalScope; decidedBy: string }
  | { status: "rejected"; message: string | null; decidedBy: string };

/**
 * Decides a pending approval, once: a second decision, or one after it expired, is a 409. Approving
 * `always` also makes the agent's permission an `allow` (exact resource and action, on the agent instance's
 * principal): its own `ask` grants for exactly that become `allow`, and an allow grant is added when none
 * exists, so the agent is not asked again (an exact `ask` on one of its roles still wins a tie: change the
 * role for that). Returns the decided row and whether the agent's grants changed.
 */
export async function decideApproval(
  db: Db,
  tenantId: string,
  approvalId: string,
  decision: Decision,
  now = Date.now(),
): Promise<{ approval: ApprovalRow; grantsChanged: boolean }> {
  const current = await findApproval(db, tenantId, approvalId);
  const status = approvalStatus(current, now);
  if (status === "expired")
    throw new ApiError(409, "approval_expired", "This approval expired before anyone decided it");
  if (status !== "pending") throw new ApiError(409, "approval_decided", `This approval was already ${status}`);
  const at = new Date(now);
  const decided = db
    .update(approval)
    .set({
      status: decision.status,
      scope: decision.status === "approved" ? decision.scope : null,
      message: decision.status === "rejected" ? decision.message : null,
      resolvedByPrincipalId: decision.decidedBy,
      resolvedAt: at,
    })
    .where(and(eq(approval.id, approvalId), eq(approval.status, "pending"), gt(approval.expiresAt, at)))
    .returning();
  const always = decision.status === "approved" && decision.scope === "always";
  let rows: ApprovalRow[];
  if (always) {
    // One batch: the grants change exactly when this very decision lands (a lost race changes nothing).
    const landed = sql`exists (select 1 from ${approval} where ${approval.id} = ${approvalId} and ${approval.status} = 'approved' and ${approval.resolvedAt} = ${now})`;
    const same = and(
      eq(grant.tenantId, current.tenantId),
      eq(grant.principalId, current.principalId),
      eq(grant.resource, current.resource),
      eq(grant.action, current.action),
    );
    const [updated] = await db.batch([
      decided,
      db
        .update(grant)
        .set({ effect: "allow", origin: "approval", updatedAt: at })
        .where(and(same, eq(grant.effect, "ask"), landed)),
      db.insert(grant).select((qb) =>
        qb
          .select({
            id: sql<string>`${newId("grant")}`.as("id"),
            tenantId: approval.tenantId,
            roleId: sql<string | null>`null`.as("role_id"),
            principalId: approval.principalId,
            resource: approval.resource,
            action: approval.action,
            effect: sql<"allow">`'allow'`.as("effect"),
            conditions: sql<null>`null`.as("conditions"),
            origin: sql<"approval">`'approval'`.as("origin"),
            expiresAt: sql<null>`null`.as("expires_at"),
            createdAt: sql<number>`${now}`.as("created_at"),
            updatedAt: sql<number>`${now}`.as("updated_at"),
          })
          .from(approval)
          .where(
            and(
              eq(approval.id, approvalId),
              eq(approval.status, "approved"),
              eq(approval.resolvedAt, at),
              sql`not exists (select 1 from ${grant} where ${and(same, eq(grant.effect, "allow"))})`,
            ),
          ),
      ),
    ]);
    rows = updated;
  } else {
    rows = await decided;
  }
  const row = rows[0];
  // Another decision won the race between the read and the update.
  if (!row) throw new ApiError(409, "approval_decided", "This approval was decided by someone else meanwhile");
  return { approval: row, grantsChanged: always };
}

/**
 * The approval of an agent's API request (its principal, method, path and body): null when none waits;
 * a `once` approval is used by the retry it allows (consumed here, so the next request asks again).
 */
export async function approvalOfRequest(
  db: Db,
  principalId: string,
  requestKey: string,
  now = Date.now(),
): Promise<{ row: ApprovalRow; outcome: "pending" | "approved" | "rejected" } | null> {
  const rows = await db
    .select()
    .from(approval)
    .where(and(eq(approval.principalId, principalId), eq(approval.requestKey, requestKey), isNull(approval.consumedAt)))
    .orderBy(approval.createdAt)
    .limit(20);
  for (const row of rows) {
    const status = approvalStatus(row, now);
    if (status === "pending") return { row, outcome: "pending" };
    if (status === "approved") {
      // Used once: the conditional update makes two concurrent retries use it only once.
      const [used] = await db
        .update(approval)
        .set({ consumedAt: new Date(now) })
        .where(and(eq(approval.id, row.id), isNull(approval.consumedAt)))
        .returning({ id: approval.id });
      if (used) return { row, outcome: "approved" };
    }
    if (status === "rejected") {
      await db
        .update(approval)
        .set({ consumedAt: new Date(now) })
        .where(eq(approval.id, row.id));
      // A rejection answers the retry of the request it was about, not the same request sent again
      // after the approval's time has passed: that one asks afresh.
      if (row.expiresAt && row.expiresAt.getTime() <= now) continue;
      return { row, outcome: "rejected" };
    }
  }
  return null;
}

/** Marks every pending approval past its expiry as expired; returns them (their agents are told). */
export async function expireApprovals(db: Db, now = Date.now(), limit = 500): Promise<ApprovalRow[]> {
  const due = await db
    .select({ id: approval.id })
    .from(approval)
    .where(and(eq(approval.status, "pending"), lte(approval.expiresAt, new Date(now))))
    .limit(limit);
  if (due.length === 0) return [];
  return db
    .update(approval)
    .set({ status: "expired", resolvedAt: new Date(now) })
    .where(
      and(
        inArray(
          approval.id,
          due.map((d) => d.id),
        ),
        eq(approval.status, "pending"),
      ),
    )
    .returning();
}
