/**
 * The sidecar's side of gates and approvals: ask the hub before a gated action (`gate.request`), and wait
 * for a person's decision on an approval (`approval.decision`), whether the approval came from a gate or
 * from an API request the agent made with its own token.
 */
import type { InstanceHubFrame, InstanceSidecarFrame } from "../src/runtime/protocol";

type GateDecisionFrame = Extract<InstanceHubFrame, { type: "gate.decision" }>;
type ApprovalDecisionFrame = Extract<InstanceHubFrame, { type: "approval.decision" }>;

export type GateAnswer =
  | { decision: "allow" }
  | { decision: "deny"; reason: string }
  | { decision: "pending"; approvalId: string; expiresAt: string | null };

export type ApprovalOutcome = {
  decision: "approved" | "rejected" | "expired";
  scope: "once" | "always" | null;
  message: string | null;
};

export type GateOptions = {
  send: (frame: InstanceSidecarFrame) => void;
  agentAddress: () => string;
  /** How long the hub has to answer a `gate.request` before the action is treated as denied. */
  answerTimeoutMs?: number;
};

/** Decisions that arrive before anyone waits for them are kept, this many at most. */
const MAX_EARLY_DECISIONS = 100;
/** Past an approval's expiry, how long to wait for the hub's own `expired` before giving up. */
const EXPIRY_GRACE_MS = 5 * 60 * 1000;

export class Gates {
  private readonly options: GateOptions;
  private readonly answers = new Map<string, (answer: GateAnswer) => void>();
  private readonly waiting = new Map<string, (outcome: ApprovalOutcome) => void>();
  private readonly early = new Map<string, ApprovalOutcome>();

  constructor(options: GateOptions) {
    this.options = options;
  }

  /** Asks whether the agent may do `action` on `resource` now. */
  ask(resource: string, action: string, context: Record<string, unknown>, signal: AbortSignal): Promise<GateAnswer> {
    const requestId = crypto.randomUUID();
    return new Promise<GateAnswer>((resolve, reject) => {
      const timer = setTimeout(
        () => done({ decision: "deny", reason: "the hub did not answer the gate request" }),
        this.options.answerTimeoutMs ?? 15_000,
      );
      const onAbort = () => {
        cleanup();
        reject(new Error("aborted"));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.answers.delete(requestId);
        signal.removeEventListener("abort", onAbort);
      };
      const done = (answer: GateAnswer) => {
        cleanup();
        resolve(answer);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.answers.set(requestId, done);
      this.options.send({
        type: "gate.request",
        requestId,
        agentAddress: this.options.agentAddress(),
        resource,
        action,
        context,
      });
    });
  }

  /** Waits until a person decides the approval (or the hub says it expired). */
  decision(approvalId: string, expiresAt: string | null, signal: AbortSignal): Promise<ApprovalOutcome> {
    const known = this.early.get(approvalId);
    if (known) {
      this.early.delete(approvalId);
      return Promise.resolve(known);
    }
    return new Promise<ApprovalOutcome>((resolve, reject) => {
      const expiry = expiresAt ? Date.parse(expiresAt) : Number.NaN;
      const timer = Number.isFinite(expiry)
        ? setTimeout(
            () => done({ decision: "expired", scope: null, message: null }),
            Math.max(0, expiry - Date.now()) + EXPIRY_GRACE_MS,
          )
        : undefined;
      const onAbort = () => {
        cleanup();
        reject(new Error("aborted"));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.waiting.delete(approvalId);
        signal.removeEventListener("abort", onAbort);
      };
      const done = (outcome: ApprovalOutcome) => {
        cleanup();
        resolve(outcome);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.set(approvalId, done);
    });
  }

  onGateDecision(frame: GateDecisionFrame): void {
    const resolve = this.answers.get(frame.requestId);
    if (!resolve) return;
    if (frame.decision === "allow") resolve({ decision: "allow" });
    else if (frame.decision === "pending" && frame.approvalId) {
      resolve({ decision: "pending", approvalId: frame.approvalId, expiresAt: frame.expiresAt ?? null });
    } else resolve({ decision: "deny", reason: frame.reason ?? "denied" });
  }

  onApprovalDecision(frame: ApprovalDecisionFrame): void {
    const outcome: ApprovalOutcome = { decision: frame.decision, scope: frame.scope, message: frame.message };
    const resolve = this.waiting.get(frame.approvalId);
    if (resolve) {
      resolve(outcome);
      return;
    }
    // The decision can beat the wait (an API request's 202 is still on its way back): keep it briefly.
    this.early.set(frame.approvalId, outcome);
    if (this.early.size > MAX_EARLY_DECISIONS) this.early.delete(this.early.keys().next().value as string);
  }
}
