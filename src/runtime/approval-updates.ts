/**
 * Approvals reach the instance whose agent asked: its stream shows a new approval and every decision,
 * and its sidecar gets the decision (at once, or when it is back). Expired approvals are announced by the
 * cleanup pass.
 */
import { type ApprovalRow, expireApprovals } from "../authz/approvals";
import type { Db } from "../db/client";
import { approvalView } from "./gates";
import { instanceObject } from "./stubs";

export async function announceApproval(env: Env, row: ApprovalRow): Promise<void> {
  if (!row.instanceId) return;
  await instanceObject(env, row.instanceId)
    .approvalChanged(approvalView(row), row.gateRequestId)
    .catch((err: unknown) => console.error(`approval ${row.id} could not reach ${row.instanceId}`, err));
}

/** Expires every approval past its time and tells the agents waiting for them; returns how many. */
export async function expireAndAnnounce(env: Env, db: Db, now = Date.now()): Promise<number> {
  const expired = await expireApprovals(db, now);
  await Promise.all(expired.map((row) => announceApproval(env, row)));
  return expired.length;
}
