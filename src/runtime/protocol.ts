/**
 * The sidecar protocol's frames (docs/sidecar-protocol.md), shared by the hub and the reference sidecar.
 * Every frame is one JSON text message with a `type`. Binary payloads (MIME) are base64 strings.
 */

// ---------------------------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------------------------

/** One inference endpoint the agent may call (OpenAI-compatible chat completions, or the offline echo). */
export type InferenceSource = {
  /** `<provider plugin>:<model>`, e.g. `openai:gpt-4o-mini` or `echo:echo`. */
  id: string;
  /** The provider's plugin: `openai` (any OpenAI-compatible endpoint) or `echo` (offline, deterministic). */
  provider: string;
  baseURL: string;
  apiKey: string;
  model: string;
  /** The credential the key came from: the hub sends `sources.update` when it changes. */
  credentialId?: string;
};

/** A grant as the hub evaluates it, serialized (`expiresAt` as ISO or null). */
export type WireGrantRule = {
  id: string;
  resource: string;
  action: string;
  effect: "allow" | "deny" | "ask";
  conditions: Record<string, unknown> | null;
  expiresAt: string | null;
};

/** Everything a sidecar needs to run one agent instance. */
export type HarnessConfig = {
  instanceId: string;
  sessionId: string;
  agentId: string;
  tenantId: string;
  /** The instance's own principal. */
  principalId: string;
  /** `<instanceId>@<tenant domain>`: the agent's mail address. */
  agentAddress: string;
  systemPrompt: string;
  tools: unknown[];
  /**
   * The agent's own API token (`Authorization: Bearer ahi_…`): it calls the hub's REST API as the instance's
   * principal, with its grants, while the instance runs (docs/approvals.md, "API requests").
   */
  apiToken: string;
  grants: WireGrantRule[];
  sources: InferenceSource[];
  defaultSource: string;
};

export type TokenUsage = { input: number; output: number; cacheRead: number; cacheWrite: number; thinking: number };

export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string }
  | { type: "redacted_thinking"; data: string }
  | { type: "refusal"; reason: string }
  | { type: "tool_call"; callId: string; name: string; arguments: unknown }
  | { type: "tool_result"; callId: string; content: unknown; isError?: boolean }
  | {
      type: "image" | "audio" | "video" | "document";
      mimeType: string;
      data?: string;
      reference?: string;
      url?: string;
    };

/**
 * An inference event as the sidecar emits it (docs/sidecar-protocol.md §4). `seq` is the sidecar's own
 * counter; the hub gives every recorded event its own per-instance sequence number (the SSE `id:`).
 */
export type InferenceEvent = { type: string; seq: number; data: Record<string, unknown> };

export type ConnectorState = {
  threadRoot: string;
  lastMessageId: string;
  replyTo: string;
  cc: string[];
  subject?: string;
} | null;

/** A repository a pack belongs to: the agent's (definition or instance) state, or an asset. */
export type RepoId = { kind: "agent-state" | "skill" | "repo"; id: string };

/** Why a pack was refused (docs/sidecar-protocol.md, section 3.2). */
export type PackRejectReason =
  | "path_violation"
  | "non_fast_forward"
  | "sha_mismatch"
  | "corrupt"
  | "too_large"
  | "conflict"
  /** From a sidecar: the deploy commit is not signed by the hub's key. */
  | "signature_invalid";

/** Raw bytes of a pack per `repo.pack.push` chunk (before base64). */
export const PACK_CHUNK_BYTES = 64 * 1024;

/** Severity of a log line, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type AbortReason =
  | "user_disconnect"
  | "wallet_exhaustion"
  | "admin_kill"
  | "session_timeout"
  | "credential_revocation";

/**
 * The hub's answer to a frame it refuses (on either channel): not JSON, an unknown `type`, or a field that
 * does not match the documented shape (src/runtime/frame-schemas.ts). The frame is not applied; the
 * channel stays open. `frameType` is the refused frame's `type` when it had a string one; `field` is the
 * dotted path of the first bad field (array indices as numbers), null when the frame as a whole is bad.
 */
export type FrameError = { type: "frame.error"; frameType: string | null; field: string | null; message: string };

// ---------------------------------------------------------------------------------------------
// Control channel (`GET /api/sidecars/connect`): which instances a sidecar serves
// ---------------------------------------------------------------------------------------------

export type ControlHubFrame =
  /** Sent once after the upgrade: who the hub thinks is connected. */
  | { type: "hello"; sidecarId: string; tenantId: string }
  /** Serve this instance: open its instance channel at `path` (relative to the hub URL). */
  | { type: "instance.assign"; instanceId: string; agentAddress: string; path: string }
  /** Stop serving this instance (it was stopped while the sidecar was away). */
  | { type: "instance.revoke"; instanceId: string; reason: string }
  | FrameError
  | { type: "pong" };

export type ControlSidecarFrame =
  /** Instances the sidecar still runs (after a restart): the hub answers with `instance.assign` or `instance.revoke`. */
  { type: "ready"; instances: string[]; capacity?: number } | { type: "ping" };

// ---------------------------------------------------------------------------------------------
// Instance channel (`GET /api/sidecars/instances/:instanceId/connect`): one agent instance
// ---------------------------------------------------------------------------------------------

export type InstanceHubFrame =
  | { type: "agent.deploy"; agentAddress: string; agentId: string; config: HarnessConfig; hubPublicKey: string }
  | { type: "session.start"; agentAddress: string }
  | { type: "mail.inbound"; agentAddress: string; mailId: string; rawMessage: string }
  | { type: "session.abort"; requestId: string; agentAddress: string; reason: AbortReason }
  | { type: "agent.undeploy"; agentAddress: string; reason: string }
  | { type: "grants.update"; requestId: string; agentAddress: string; grants: WireGrantRule[] }
  | {
      type: "sources.update";
      requestId: string;
      agentAddress: string;
      sources: InferenceSource[];
      defaultSource: string;
    }
  | { type: "sync.request"; agentAddress: string; transferId: string }
  /** The answer to `gate.request`: go ahead, do not, or wait for `approval.decision` (a person decides). */
  | {
      type: "gate.decision";
      requestId: string;
      agentAddress: string;
      decision: "allow" | "deny" | "pending";
      reason?: string;
      approvalId?: string;
      /** When `pending`: the approval expires then if nobody decides it. */
      expiresAt?: string;
    }
  /** A person decided an approval the agent waits for (a gated tool call, or an API request). */
  | {
      type: "approval.decision";
      agentAddress: string;
      approvalId: string;
      /** The `gate.request` it answers; null for an API request's approval. */
      requestId: string | null;
      decision: "approved" | "rejected" | "expired";
      scope: "once" | "always" | null;
      message: string | null;
    }
  | { type: "challenge"; agentAddress: string; nonce: string }
  | { type: "challenge.failed"; agentAddress: string; reason: string }
  /** One chunk of a pack the hub sends: the deploy tree, an asset, or a restored state commit. */
  | { type: "repo.pack.push"; agentAddress: string; transferId: string; seq: number; data: string }
  | {
      type: "repo.pack.done";
      agentAddress: string;
      transferId: string;
      repoId: RepoId;
      ref: string;
      commitSha: string;
      chunks: number;
      /** For an asset: where its tree goes in the workspace (`skills/<asset name>/`). */
      mountPath?: string;
    }
  /** The hub's answer to a state push. */
  | { type: "repo.pack.ack"; agentAddress: string; transferId: string; ref: string; commitSha: string }
  | {
      type: "repo.pack.reject";
      agentAddress: string;
      transferId: string;
      reason: PackRejectReason;
      message: string;
      currentSha: string | null;
    }
  | FrameError
  | { type: "pong" };

export type InstanceSidecarFrame =
  | { type: "agent.deploy.ack"; agentAddress: string; publicKey: string }
  | { type: "agent.error"; agentAddress: string; error: string }
  | { type: "session.start.ack"; agentAddress: string }
  | { type: "session.ack"; requestId: string }
  | { type: "session.error"; requestId: string; error: string }
  | { type: "agent.undeploy.ack"; agentAddress: string; statePushed: boolean }
  | { type: "agent.event"; agentAddress: string; sessionId: string; event: InferenceEvent }
  | {
      type: "mail.outbound";
      agentAddress: string;
      rawMessage: string;
      recipients: string[];
      messageId?: string;
      sessionId?: string;
    }
  | { type: "connector.state.changed"; agentAddress: string; connectorState: ConnectorState }
  /**
   * Before a gated action (a tool call): may the agent do `action` on `resource`? `context` is shown to
   * whoever decides; `context.cost` (a decimal string) is the action's cost for spend conditions.
   */
  | {
      type: "gate.request";
      requestId: string;
      agentAddress: string;
      resource: string;
      action: string;
      context?: Record<string, unknown>;
    }
  /**
   * After a reconnect: proof of the instance key over `nonce ‖ utf8(agentAddress)` (hex Ed25519), and the
   * deploy commit the sidecar holds (the hub sends the deploy packs again when it differs).
   */
  | { type: "challenge.response"; agentAddress: string; signature: string; deployRef?: string | null }
  /** One chunk of a state push. */
  | { type: "repo.pack.push"; agentAddress: string; transferId: string; seq: number; data: string }
  /** The state push is complete: move `ref` from `expectedOldSha` (null: it must not exist) to `commitSha`. */
  | {
      type: "repo.pack.done";
      agentAddress: string;
      transferId: string;
      ref: string;
      commitSha: string;
      expectedOldSha: string | null;
      chunks: number;
    }
  /** The answer to a pack the hub sent. */
  | { type: "repo.pack.ack"; agentAddress: string; transferId: string }
  | { type: "repo.pack.reject"; agentAddress: string; transferId: string; reason: PackRejectReason; message: string }
  /** A line for the instance's logs (docs/observability.md, "Logs"), kept beside what the hub records. */
  | { type: "log"; agentAddress: string; level: LogLevel; message: string; metadata?: Record<string, unknown> }
  | { type: "ping" };

/** The sidecar pings each of its channels this often; the hub answers every ping (docs/sidecar-protocol.md, "Heartbeat"). */
export const HEARTBEAT_INTERVAL_MS = 15_000;
/** A sidecar channel silent for this long is considered gone. */
export const SIDECAR_TIMEOUT_MS = 45_000;
