/**
 * The exact shape of every frame of the sidecar protocol (docs/sidecar-protocol.md, section 3), both ways,
 * as zod schemas. The hub checks every frame a sidecar sends against them before acting on it: a frame that
 * does not match is refused with one `frame.error` naming the first bad field, and is not applied.
 *
 * Objects are strict: a field the protocol does not name is an error, so that a misspelled one
 * (`input_tokens` for `input`) is reported instead of silently counting as absent.
 */
import { z } from "zod";
import type {
  ControlHubFrame,
  ControlSidecarFrame,
  FrameError,
  InstanceHubFrame,
  InstanceSidecarFrame,
} from "./protocol";

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

const str = z.string();
const bool = z.boolean();
/** A non-negative integer (a count, a sequence number). */
const count = z.number().int().nonnegative();
/** Any JSON value; the field must be there. */
const json = z.json();
const JsonObject = z.record(z.string(), z.unknown());
/** Standard base64 with padding (`Buffer.toString("base64")`, `btoa`). */
const base64 = z.base64();
const hex = (digits: number) =>
  z.string().regex(new RegExp(`^[0-9a-fA-F]{${digits}}$`), `expected ${digits} hex digits`);
/** A git object id: 40 hex digits (SHA-1) or 64 (SHA-256). */
const objectId = z.string().regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, "expected a git object id (40 or 64 hex digits)");
const PackRejectReason = z.enum([
  "path_violation",
  "non_fast_forward",
  "sha_mismatch",
  "corrupt",
  "too_large",
  "conflict",
  "signature_invalid",
]);

/**
 * Token counts of one model call, so far (`inference.usage`) or final (`inference.done`): non-negative
 * integers, each token counted once. `input` and `output` are required; the others are 0 when absent.
 */
export const TokenUsageSchema = z.strictObject({
  input: count,
  output: count,
  cacheRead: count.optional(),
  cacheWrite: count.optional(),
  thinking: count.optional(),
});

const MEDIA_TYPES = ["image", "audio", "video", "document"] as const;

/** One block of a model call's content (`inference.done` → `turn.content`). */
export const ContentBlockSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text"), text: str }),
  z.strictObject({ type: z.literal("thinking"), thinking: str }),
  z.strictObject({ type: z.literal("redacted_thinking"), data: str }),
  z.strictObject({ type: z.literal("refusal"), reason: str }),
  z.strictObject({ type: z.literal("tool_call"), callId: str, name: str, arguments: json }),
  z.strictObject({ type: z.literal("tool_result"), callId: str, content: json, isError: bool.optional() }),
  z
    .strictObject({
      type: z.enum(MEDIA_TYPES),
      mimeType: str,
      data: base64.optional(),
      reference: str.optional(),
      url: str.optional(),
    })
    .refine((b) => [b.data, b.reference, b.url].filter((v) => v !== undefined).length === 1, {
      message: "a media block has exactly one of data, reference, url",
    }),
]);

/** What went wrong with a model call (`inference.error`, `inference.retry`). */
export const InferenceErrorSchema = z.strictObject({
  category: str.min(1),
  message: str,
  statusCode: z.number().int().optional(),
  retryAfterMs: count.optional(),
});

const ToolCallSchema = z.strictObject({ callId: str, name: str, arguments: json });

/**
 * The `data` of each event type (docs/sidecar-protocol.md, section 4). `custom.<anything>` carries any
 * JSON object; a type that is neither listed nor `custom.*` is refused.
 */
export const EVENT_DATA_SCHEMAS = {
  "inference.start": z.strictObject({ model: str }),
  "inference.text.delta": z.strictObject({ token: str }),
  "inference.thinking.delta": z.strictObject({ token: str }),
  "inference.tool_call.start": z.strictObject({ callId: str, name: str, partial: bool.optional() }),
  "inference.tool_call.delta": z.strictObject({ callId: str, delta: str }),
  "inference.tool_call.end": z.strictObject({ callId: str, name: str, arguments: json, partial: bool.optional() }),
  "inference.usage": z.strictObject({ usage: TokenUsageSchema, source: str.optional() }),
  "inference.done": z.strictObject({
    turn: z.strictObject({
      role: z.literal("assistant"),
      content: z.array(ContentBlockSchema),
      model: str,
      timestamp: str.optional(),
    }),
    usage: TokenUsageSchema.optional(),
    source: str.optional(),
  }),
  "inference.retry": z.strictObject({
    attempt: count.min(1),
    delayMs: count,
    previousError: InferenceErrorSchema,
  }),
  "inference.error": z.strictObject({ error: InferenceErrorSchema, partial: bool.optional() }),
  "tool.start": z.strictObject({ call: ToolCallSchema }),
  "tool.done": z.strictObject({ result: z.strictObject({ callId: str, content: json, isError: bool }) }),
  "connector.reply": z.strictObject({ content: str }),
  "reactor.start": z.strictObject({}),
  "reactor.gate.blocked": z.strictObject({ reason: str, gateId: str }),
  "reactor.gate.cleared": z.strictObject({ gateId: str, reason: z.enum(["resolved", "timeout"]) }),
  "reactor.done": z.strictObject({}),
  "reactor.error": z.strictObject({
    error: z.union([str, z.looseObject({ message: str })]),
    fatal: bool.optional(),
  }),
} as const;

export type EventType = keyof typeof EVENT_DATA_SCHEMAS;
const CUSTOM_EVENT = /^custom\.[\x21-\x7e]+$/;

/** An inference event (`agent.event.event`): `{type, seq, data}`, `data` as its type says. */
export const InferenceEventSchema = z
  .strictObject({ type: str, seq: count, data: JsonObject })
  .superRefine((event, ctx) => {
    if (CUSTOM_EVENT.test(event.type)) return;
    const schema = (EVENT_DATA_SCHEMAS as Record<string, z.ZodType>)[event.type];
    if (!schema) {
      ctx.addIssue({
        code: "custom",
        path: ["type"],
        message: `unknown event type "${event.type}"; expected custom.* or one of: ${Object.keys(EVENT_DATA_SCHEMAS).join(", ")}`,
      });
      return;
    }
    const checked = schema.safeParse(event.data);
    if (!checked.success)
      for (const issue of checked.error.issues) ctx.addIssue({ ...issue, path: ["data", ...issue.path] });
  });

const ConnectorStateSchema = z
  .strictObject({
    threadRoot: str,
    lastMessageId: str,
    replyTo: str,
    cc: z.array(str),
    subject: str.optional(),
  })
  .nullable();

// ---------------------------------------------------------------------------------------------
// Sidecar → hub
// ---------------------------------------------------------------------------------------------

const address = { agentAddress: str };
/** A `log` frame's bounds: one line is for people, not a dump. */
export const MAX_LOG_MESSAGE_CHARS = 4_096;
export const MAX_LOG_METADATA_CHARS = 8_192;

export const InstanceSidecarFrameSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("agent.deploy.ack"), ...address, publicKey: hex(64) }),
  z.strictObject({ type: z.literal("agent.error"), ...address, error: str }),
  z.strictObject({ type: z.literal("session.start.ack"), ...address }),
  z.strictObject({ type: z.literal("session.ack"), requestId: str }),
  z.strictObject({ type: z.literal("session.error"), requestId: str, error: str }),
  z.strictObject({ type: z.literal("agent.undeploy.ack"), ...address, statePushed: bool }),
  z.strictObject({ type: z.literal("agent.event"), ...address, sessionId: str, event: InferenceEventSchema }),
  z.strictObject({
    type: z.literal("mail.outbound"),
    ...address,
    rawMessage: base64,
    recipients: z.array(str),
    messageId: str.optional(),
    sessionId: str.optional(),
  }),
  z.strictObject({ type: z.literal("connector.state.changed"), ...address, connectorState: ConnectorStateSchema }),
  z.strictObject({
    type: z.literal("gate.request"),
    requestId: str,
    ...address,
    resource: str,
    action: str,
    context: JsonObject.optional(),
  }),
  z.strictObject({
    type: z.literal("challenge.response"),
    ...address,
    signature: hex(128),
    deployRef: objectId.nullable().optional(),
  }),
  z.strictObject({ type: z.literal("repo.pack.push"), ...address, transferId: str, seq: count, data: base64 }),
  z.strictObject({
    type: z.literal("repo.pack.done"),
    ...address,
    transferId: str,
    ref: str,
    commitSha: objectId,
    expectedOldSha: objectId.nullable(),
    chunks: count,
  }),
  z.strictObject({ type: z.literal("repo.pack.ack"), ...address, transferId: str }),
  z.strictObject({
    type: z.literal("repo.pack.reject"),
    ...address,
    transferId: str,
    reason: PackRejectReason,
    message: str,
  }),
  z.strictObject({
    type: z.literal("log"),
    ...address,
    level: z.enum(["debug", "info", "warn", "error"]),
    message: str.min(1).max(MAX_LOG_MESSAGE_CHARS),
    metadata: JsonObject.refine((m) => JSON.stringify(m).length <= MAX_LOG_METADATA_CHARS, {
      message: `at most ${MAX_LOG_METADATA_CHARS} characters of JSON`,
    }).optional(),
  }),
  z.strictObject({ type: z.literal("ping") }),
]);

export const ControlSidecarFrameSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("ready"), instances: z.array(str), capacity: count.optional() }),
  z.strictObject({ type: z.literal("ping") }),
]);

// ---------------------------------------------------------------------------------------------
// Hub → sidecar (what the hub sends; checked by tests against what it really sends)
// ---------------------------------------------------------------------------------------------

const FrameErrorSchema = z.strictObject({
  type: z.literal("frame.error"),
  frameType: str.nullable(),
  field: str.nullable(),
  message: str,
});

const WireGrantRuleSchema = z.strictObject({
  id: str,
  resource: str,
  action: str,
  effect: z.enum(["allow", "deny", "ask"]),
  conditions: JsonObject.nullable(),
  expiresAt: z.iso.datetime().nullable(),
});

const InferenceSourceSchema = z.strictObject({
  id: str,
  provider: str,
  baseURL: str,
  apiKey: str,
  model: str,
  credentialId: str.optional(),
});

const HarnessConfigSchema = z.strictObject({
  instanceId: str,
  sessionId: str,
  agentId: str,
  tenantId: str,
  principalId: str,
  agentAddress: str,
  systemPrompt: str,
  tools: z.array(json),
  apiToken: str,
  grants: z.array(WireGrantRuleSchema),
  sources: z.array(InferenceSourceSchema),
  defaultSource: str,
});

export const InstanceHubFrameSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("agent.deploy"),
    ...address,
    agentId: str,
    config: HarnessConfigSchema,
    hubPublicKey: hex(64),
  }),
  z.strictObject({ type: z.literal("session.start"), ...address }),
  z.strictObject({ type: z.literal("mail.inbound"), ...address, mailId: str, rawMessage: base64 }),
  z.strictObject({
    type: z.literal("session.abort"),
    requestId: str,
    ...address,
    reason: z.enum(["user_disconnect", "wallet_exhaustion", "admin_kill", "session_timeout", "credential_revocation"]),
  }),
  z.strictObject({ type: z.literal("agent.undeploy"), ...address, reason: str }),
  z.strictObject({
    type: z.literal("grants.update"),
    requestId: str,
    ...address,
    grants: z.array(WireGrantRuleSchema),
  }),
  z.strictObject({
    type: z.literal("sources.update"),
    requestId: str,
    ...address,
    sources: z.array(InferenceSourceSchema),
    defaultSource: str,
  }),
  z.strictObject({ type: z.literal("sync.request"), ...address, transferId: str }),
  z.strictObject({
    type: z.literal("gate.decision"),
    requestId: str,
    ...address,
    decision: z.enum(["allow", "deny", "pending"]),
    reason: str.optional(),
    approvalId: str.optional(),
    expiresAt: str.optional(),
  }),
  z.strictObject({
    type: z.literal("approval.decision"),
    ...address,
    approvalId: str,
    requestId: str.nullable(),
    decision: z.enum(["approved", "rejected", "expired"]),
    scope: z.enum(["once", "always"]).nullable(),
    message: str.nullable(),
  }),
  z.strictObject({ type: z.literal("challenge"), ...address, nonce: hex(64) }),
  z.strictObject({ type: z.literal("challenge.failed"), ...address, reason: str }),
  z.strictObject({ type: z.literal("repo.pack.push"), ...address, transferId: str, seq: count, data: base64 }),
  z.strictObject({
    type: z.literal("repo.pack.done"),
    ...address,
    transferId: str,
    repoId: z.strictObject({ kind: z.enum(["agent-state", "skill", "repo"]), id: str }),
    ref: str,
    commitSha: objectId,
    chunks: count,
    mountPath: str.optional(),
  }),
  z.strictObject({ type: z.literal("repo.pack.ack"), ...address, transferId: str, ref: str, commitSha: objectId }),
  z.strictObject({
    type: z.literal("repo.pack.reject"),
    ...address,
    transferId: str,
    reason: PackRejectReason,
    message: str,
    currentSha: objectId.nullable(),
  }),
  FrameErrorSchema,
  z.strictObject({ type: z.literal("pong") }),
]);

export const ControlHubFrameSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("hello"), sidecarId: str, tenantId: str }),
  z.strictObject({ type: z.literal("instance.assign"), instanceId: str, ...address, path: str }),
  z.strictObject({ type: z.literal("instance.revoke"), instanceId: str, reason: str }),
  FrameErrorSchema,
  z.strictObject({ type: z.literal("pong") }),
]);

// The schemas accept nothing the TypeScript types of protocol.ts do not describe.
type Accepts<Schema extends z.ZodType, Type> = z.infer<Schema> extends Type ? true : never;
const checks: [
  Accepts<typeof InstanceSidecarFrameSchema, InstanceSidecarFrame>,
  Accepts<typeof ControlSidecarFrameSchema, ControlSidecarFrame>,
  Accepts<typeof InstanceHubFrameSchema, InstanceHubFrame>,
  Accepts<typeof ControlHubFrameSchema, ControlHubFrame>,
] = [true, true, true, true];
void checks;

// ---------------------------------------------------------------------------------------------
// Reading a frame
// ---------------------------------------------------------------------------------------------

/** A frame the hub acts on, or the `frame.error` to answer instead. */
export type ReadFrame<T> = { ok: true; frame: T } | { ok: false; error: FrameError };

export const readInstanceFrame = (message: string | ArrayBuffer): ReadFrame<InstanceSidecarFrame> =>
  readFrame(InstanceSidecarFrameSchema, message);

export const readControlFrame = (message: string | ArrayBuffer): ReadFrame<ControlSidecarFrame> =>
  readFrame(ControlSidecarFrameSchema, message);

/** Parses a WebSocket message (text, or binary holding UTF-8 text) and checks it against `schema`. */
export function readFrame<T>(schema: z.ZodType<T>, message: string | ArrayBuffer): ReadFrame<T> {
  let value: unknown;
  try {
    value = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message));
  } catch (err) {
    return refused(null, null, `not JSON: ${(err as Error).message}`);
  }
  const frameType =
    typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string"
      ? (value as { type: string }).type
      : null;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return refused(null, null, "a frame is a JSON object with a string `type`");
  }
  const checked = schema.safeParse(value);
  if (checked.success) return { ok: true, frame: checked.data };
  const { field, message: why } = describeIssue(checked.error.issues, value);
  return refused(frameType, field, why);
}

function refused(frameType: string | null, field: string | null, message: string): { ok: false; error: FrameError } {
  return { ok: false, error: { type: "frame.error", frameType, field, message } };
}

type Issue = z.core.$ZodIssue;

/**
 * The first problem, as a dotted path (array indices as numbers) and a sentence. A misspelled field shows
 * up twice (the documented one missing, the other unknown): the unknown name is reported, since it is
 * what the sender has to fix.
 */
export function describeIssue(issues: readonly Issue[], input: unknown): { field: string | null; message: string } {
  let issue = issues[0] as Issue;
  const missing = (i: Issue) => i.code === "invalid_type" && valueAt(input, i.path) === undefined;
  if (missing(issue)) {
    const parent = issue.path.slice(0, -1).join(".");
    const unknown = issues.find((i) => i.code === "unrecognized_keys" && i.path.join(".") === parent);
    if (unknown) issue = unknown;
  }
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] as string;
    return { field: [...issue.path, key].join("."), message: `unknown field "${key}"` };
  }
  const field = issue.path.length > 0 ? issue.path.join(".") : null;
  const value = valueAt(input, issue.path);
  const options = (issue as { options?: unknown[] }).options;
  if (issue.code === "invalid_union" && "discriminator" in issue && options) {
    const what = issue.path.length === 1 ? "frame type" : "type";
    return {
      field,
      message:
        value === undefined
          ? `missing: expected one of ${options.join(", ")}`
          : `unknown ${what} ${JSON.stringify(value)}; expected one of ${options.join(", ")}`,
    };
  }
  if (value === undefined && (issue.code === "invalid_type" || issue.code === "invalid_union")) {
    const expected =
      issue.code === "invalid_type" && issue.expected !== "nonoptional" ? ` (expected ${issue.expected})` : "";
    return { field, message: `missing${expected}` };
  }
  return { field, message: issue.message };
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}
