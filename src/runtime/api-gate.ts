/**
 * An agent's API request that its grants answer with `ask` waits for a person, like a gated tool call.
 * The request is identified by its method, path and a digest of its body: the same request, sent again,
 * finds its approval (pending: the same one; approved: it goes through, once; rejected: refused with the
 * approver's message). A different request asks afresh.
 */
import type { AgentCaller } from "../auth/agent-tokens";
import { approvalOfRequest, createApproval } from "../authz/approvals";
import type { Db } from "../db/client";
import { bytesToHex } from "../lib/hex";
import { sha256 } from "../lib/secret-digest";
import { announceApproval } from "./approval-updates";
import { type ApprovalView, approvalView } from "./gates";

export type ApiRequest = { resource: string; action: string; method: string; path: string; body: Uint8Array };

export type ApiGateOutcome =
  | { outcome: "approved" }
  | { outcome: "pending"; approval: ApprovalView }
  | { outcome: "rejected"; approval: ApprovalView };

/** Bodies up to this size are shown to the approver (parsed when JSON); larger ones only by their digest. */
const MAX_SHOWN_BODY = 16 * 1024;

export async function gateApiRequest(
  env: Env,
  db: Db,
  caller: AgentCaller,
  request: ApiRequest,
  now = Date.now(),
): Promise<ApiGateOutcome> {
  const bodyDigest = bytesToHex(await sha256(request.body));
  const requestKey = `api:${request.method} ${request.path} ${bodyDigest}`;
  const found = await approvalOfRequest(db, caller.principalId, requestKey, now);
  if (found?.outcome === "approved") return { outcome: "approved" };
  if (found) return { outcome: found.outcome, approval: approvalView(found.row, now) };

  const row = await createApproval(
    db,
    {
      tenantId: caller.tenantId,
      principalId: caller.principalId,
      agentId: caller.agentId,
      instanceId: caller.instanceId,
      sessionId: caller.sessionId,
      resource: request.resource,
      action: request.action,
      context: { method: request.method, path: request.path, ...shownBody(request.body, bodyDigest) },
      requestKey,
    },
    now,
  );
  await announceApproval(env, row);
  return { outcome: "pending", approval: approvalView(row, now) };
}

function shownBody(body: Uint8Array, digest: string): Record<string, unknown> {
  if (body.byteLength === 0) return {};
  if (body.byteLength > MAX_SHOWN_BODY) return { bodySha256: digest, bodyBytes: body.byteLength };
  const text = new TextDecoder().decode(body);
  try {
    return { body: JSON.parse(text) };
  } catch {
    return { body: text };
  }
}
