/**
 * Changes that reach a running instance's sidecar at once, or when it is back: grants, sources after a
 * credential changed, decisions on approvals, requests for its state and restored state. Nothing is sent
 * once the instance has stopped.
 */
import type { ShippedPack } from "../agent-state/deploy-tree";
import { getDb } from "../db/client";
import { secretBox } from "../secrets/encryption";
import { type ApprovalView, logApprovalRequest } from "./gates";
import { hubLog } from "./instance-logs";
import type { InstanceHubFrame, WireGrantRule } from "./protocol";
import { resolveCurrentSources } from "./sidecar-config";
import type { InstanceParts } from "./sidecar-frames";

/** Sends a frame for a live instance now, or keeps it for the sidecar's return; null once it stopped. */
export async function deliverIfLive(
  parts: InstanceParts,
  frame: (agentAddress: string) => InstanceHubFrame,
): Promise<"sent" | "queued" | null> {
  const setup = await parts.state.liveSetup();
  if (!setup) return null;
  return parts.socket.deliver(frame(setup.config.agentAddress)) === "sent" ? "sent" : "queued";
}

export async function pushGrants(parts: InstanceParts, grants: WireGrantRule[]): Promise<void> {
  const requestId = crypto.randomUUID();
  await deliverIfLive(parts, (agentAddress) => ({ type: "grants.update", requestId, agentAddress, grants }));
}

/**
 * A credential changed (rotated, revoked, expired, deleted, restored): when the instance's sources ever
 * came from it, they are resolved again and sent. An empty list means no usable credential is left.
 */
export async function refreshSources(parts: InstanceParts, credentialId: string): Promise<boolean> {
  const { state, env } = parts;
  const setup = await state.liveSetup();
  if (!setup || !(await state.credentialIds()).has(credentialId)) return false;
  const sources = await resolveCurrentSources(getDb(env), secretBox(env), setup);
  await state.setSources(sources);
  const requestId = crypto.randomUUID();
  const defaultSource = sources[0]?.id ?? setup.config.defaultSource;
  await deliverIfLive(parts, (agentAddress) => ({
    type: "sources.update",
    requestId,
    agentAddress,
    sources,
    defaultSource,
  }));
  return true;
}

/** An approval the agent's API request created: the instance's stream and logs show it. */
export function announceApprovalRequest(parts: InstanceParts, approval: ApprovalView): void {
  parts.events.record("approval.requested", approval);
  // Not awaited: the caller does not wait for it (and a failed log write is only reported).
  void parts.state
    .setup()
    .then((setup) => setup && logApprovalRequest(parts.env, setup, approval.id, approval.resource, approval.action))
    .catch((err: unknown) => console.error("instance log write failed", err));
}

/**
 * A person decided an approval of this instance's agent (or it expired): the stream shows it, and the
 * sidecar is told at once or when it is back, with the `gate.request` it answers.
 */
export async function announceApprovalDecision(
  parts: InstanceParts,
  approval: ApprovalView,
  gateRequestId: string | null,
): Promise<void> {
  const setup = await parts.state.liveSetup();
  if (!setup) return;
  parts.events.record("approval.decided", approval);
  const decision = approval.status;
  const level = decision === "approved" ? "info" : "warn";
  await hubLog(
    parts.env,
    setup,
    level,
    `Approval ${approval.id} ${decision}: ${approval.action} on ${approval.resource}`,
    {
      approvalId: approval.id,
      status: decision,
      scope: approval.scope,
      message: approval.message,
    },
  );
  if (decision !== "approved" && decision !== "rejected" && decision !== "expired") return;
  await deliverIfLive(parts, (agentAddress) => ({
    type: "approval.decision",
    agentAddress,
    approvalId: approval.id,
    requestId: gateRequestId,
    decision,
    scope: approval.scope,
    message: approval.message,
  }));
}

/** Asks the sidecar to push the instance's state now (or when it is back); null once it stopped. */
export function requestStateSync(parts: InstanceParts): Promise<"sent" | "queued" | null> {
  const transferId = `sync-${Date.now()}`;
  return deliverIfLive(parts, (agentAddress) => ({ type: "sync.request", agentAddress, transferId }));
}

/** A restored state commit for a connected sidecar, so its branch and files follow; false when none is. */
export async function shipRestoredState(parts: InstanceParts, pack: ShippedPack): Promise<boolean> {
  const setup = await parts.state.liveSetup();
  const ws = parts.socket.trusted();
  if (!setup || !ws) return false;
  await parts.packs.ship(ws, setup, [pack]);
  parts.events.record("state.restored", { ref: pack.ref, commitSha: pack.commitSha });
  return true;
}
