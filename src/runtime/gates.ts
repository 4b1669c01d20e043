/**
 * Gates: before a gated action (a tool call), the sidecar asks whether its agent may do it, and the hub
 * decides with the instance principal's grants as they are now, in the context of the agent's spend today.
 * `allow` and `deny` are answered at once; `ask` creates an approval, which the sidecar waits for
 * (`approval.decision`), and which shows on the instance's stream and to whoever may decide it.
 */
import { APPROVAL_TTL_MS, type ApprovalRow, createApproval } from "../authz/approvals";
import { defaultConditionRegistry } from "../authz/conditions";
import { evaluateGrants } from "../authz/evaluate";
import { collectGrants } from "../authz/grant-store";
import type { RequestContext } from "../authz/types";
import { walletSpentToday } from "../catalog/wallets";
import { type Db, getDb } from "../db/client";
import { isDecimal } from "../lib/decimal";
import { hubLog } from "./instance-logs";
import type { InstanceSetup } from "./instance-state";
import type { InstanceHubFrame, InstanceSidecarFrame } from "./protocol";
import type { InstanceParts } from "./sidecar-frames";

type GateRequest = Extract<InstanceSidecarFrame, { type: "gate.request" }>;
type GateDecision = Extract<InstanceHubFrame, { type: "gate.decision" }>;

const MAX_CONTEXT_BYTES = 16 * 1024;

/** The condition context of an agent's action: who, when, its wallet's spend today and the action's cost. */
export async function agentContext(
  db: Db,
  setup: InstanceSetup,
  cost: unknown,
  now = Date.now(),
): Promise<RequestContext> {
  return {
    now,
    principalId: setup.config.principalId,
    tenantId: setup.tenantId,
    spentToday: setup.walletId ? await walletSpentToday(db, setup.walletId, now) : null,
    cost: isDecimal(cost) ? cost : null,
  };
}

/** The API's view of an approval, as it travels on the stream and in REST. */
export function approvalView(row: ApprovalRow, now = Date.now()) {
  const expired = row.status === "pending" && row.expiresAt !== null && row.expiresAt.getTime() <= now;
  return {
    id: row.id,
    tenantId: row.tenantId,
    principalId: row.principalId,
    agentId: row.agentId,
    instanceId: row.instanceId,
    sessionId: row.sessionId,
    resource: row.resource,
    action: row.action,
    ...(row.context ? { context: row.context } : {}),
    status: expired ? ("expired" as const) : row.status,
    scope: row.scope,
    message: row.message,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt ? row.expiresAt.toISOString() : null,
    resolvedAt: row.resolvedAt ? row.resolvedAt.toISOString() : null,
  };
}

export type ApprovalView = ReturnType<typeof approvalView>;

export async function answerGate(parts: InstanceParts, setup: InstanceSetup, frame: GateRequest): Promise<void> {
  const { socket, events } = parts;
  const ws = socket.trusted();
  const answer = (decision: Omit<GateDecision, "type" | "requestId" | "agentAddress">) => {
    if (ws)
      socket.send(ws, {
        type: "gate.decision",
        requestId: frame.requestId,
        agentAddress: setup.config.agentAddress,
        ...decision,
      });
  };
  const { resource, action } = frame;
  const context =
    frame.context && typeof frame.context === "object" && !Array.isArray(frame.context) ? frame.context : {};
  if (
    typeof frame.requestId !== "string" ||
    typeof resource !== "string" ||
    typeof action !== "string" ||
    !resource ||
    !action
  ) {
    answer({ decision: "deny", reason: "gate.request needs requestId, resource and action (strings)" });
    return;
  }
  if (JSON.stringify(context).length > MAX_CONTEXT_BYTES) {
    answer({ decision: "deny", reason: `context is larger than ${MAX_CONTEXT_BYTES} bytes` });
    return;
  }
  const db = getDb(parts.env);
  const now = Date.now();
  const grants = await collectGrants(db, setup.tenantId, setup.config.principalId, new Date(now));
  const ctx = await agentContext(db, setup, context.cost, now);
  const decided = evaluateGrants(grants, resource, action, ctx, defaultConditionRegistry);
  if (decided.effect === "allow") return answer({ decision: "allow" });
  if (decided.effect !== "ask") {
    const reason = decided.winner ? "denied by a grant" : "no grant allows it";
    answer({ decision: "deny", reason });
    await hubLog(parts.env, setup, "warn", `Gate denied ${action} on ${resource}: ${reason}`, { resource, action });
    return;
  }
  const row = await createApproval(
    db,
    {
      tenantId: setup.tenantId,
      principalId: setup.config.principalId,
      agentId: setup.config.agentId,
      instanceId: setup.instanceId,
      sessionId: setup.config.sessionId,
      resource,
      action,
      context,
      gateRequestId: frame.requestId,
    },
    now,
  );
  events.record("approval.requested", approvalView(row, now));
  answer({ decision: "pending", approvalId: row.id, expiresAt: new Date(now + APPROVAL_TTL_MS).toISOString() });
  await logApprovalRequest(parts.env, setup, row.id, resource, action);
}

/** An approval the agent waits for, in the instance's logs. */
export async function logApprovalRequest(
  env: Env,
  setup: InstanceSetup,
  approvalId: string,
  resource: string,
  action: string,
): Promise<void> {
  const message = `Approval ${approvalId} requested: ${action} on ${resource} waits for a person`;
  await hubLog(env, setup, "info", message, { approvalId, resource, action });
}
