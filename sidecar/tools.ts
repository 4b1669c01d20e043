/**
 * The reference sidecar's built-in tools. Every call of a gated tool is first asked of the hub
 * (`tool:<name>` invoke); `hub_api` is not gated here because the hub's API authorizes each request
 * itself, with the agent's own grants (and makes it wait for approval where they say `ask`).
 */
import type { ApprovalOutcome } from "./gates";
import type { ToolSpec } from "./models";

export type ToolResult = { content: string; isError: boolean };

export type ToolContext = {
  signal: AbortSignal;
  /** Waits for a person to decide an approval the hub created (the instance shows `waiting_approval`). */
  awaitApproval: (approvalId: string, expiresAt: string | null) => Promise<ApprovalOutcome>;
};

export type Tool = ToolSpec & {
  gated: boolean;
  run(args: Record<string, unknown>, context: ToolContext): Promise<ToolResult>;
};

export type BuiltinToolOptions = {
  /** The hub's base URL; `hub_api` calls it. */
  hubUrl: string;
  /** The instance's own API token (it can change on redeploy, so it is read at call time). */
  apiToken: () => string | undefined;
};

/** What a tool returns to the model is cut to this many characters. */
const MAX_RESULT_CHARS = 8_000;
const MAX_NOTES = 1_000;
const API_METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

const ok = (content: string): ToolResult => ({ content, isError: false });
const failed = (content: string): ToolResult => ({ content, isError: true });

export function builtinTools(options: BuiltinToolOptions): Tool[] {
  const notes: string[] = [];
  return [
    {
      name: "clock",
      description: "The current date and time (UTC, ISO 8601).",
      parameters: { type: "object", properties: {}, additionalProperties: false },
      gated: true,
      run: async () => ok(new Date().toISOString()),
    },
    {
      name: "note",
      description: "Keeps a short note for later in this instance's notebook and says how many notes it holds.",
      parameters: {
        type: "object",
        properties: { text: { type: "string", description: "What to note" } },
        required: ["text"],
        additionalProperties: false,
      },
      gated: true,
      run: async (args) => {
        const text = typeof args.text === "string" ? args.text.trim() : "";
        if (!text) return failed("`text` must be a non-empty string");
        notes.push(text.slice(0, 2_000));
        if (notes.length > MAX_NOTES) notes.shift();
        return ok(`Noted (${notes.length}): ${text}`);
      },
    },
    {
      name: "hub_api",
      description:
        "Calls the Agent Hub REST API as this agent (its own principal and grants). A request its grants " +
        "answer with `ask` waits for a person's approval, then is sent again.",
      parameters: {
        type: "object",
        properties: {
          method: { type: "string", enum: [...API_METHODS], description: "HTTP method (default GET)" },
          path: { type: "string", description: "A path under /api/, with its query string" },
          body: { description: "A JSON body, for POST, PUT and PATCH" },
        },
        required: ["path"],
        additionalProperties: false,
      },
      gated: false,
      run: (args, context) => callHubApi(options, args, context),
    },
  ];
}

async function callHubApi(
  options: BuiltinToolOptions,
  args: Record<string, unknown>,
  context: ToolContext,
): Promise<ToolResult> {
  const method = typeof args.method === "string" ? args.method.toUpperCase() : "GET";
  const path = typeof args.path === "string" ? args.path : "";
  if (!API_METHODS.has(method)) return failed(`method must be one of ${[...API_METHODS].join(", ")}`);
  if (!path.startsWith("/api/")) return failed("path must start with /api/");
  const token = options.apiToken();
  if (!token) return failed("This instance has no API token (the hub did not give one at deploy)");
  const body = args.body === undefined ? undefined : JSON.stringify(args.body);
  const url = new URL(path, options.hubUrl);
  if (url.origin !== new URL(options.hubUrl).origin) return failed("path must stay on the hub");

  // The same request, byte for byte, is what an approval lets through: it is built once and resent.
  const send = async () => {
    const response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body }),
      signal: context.signal,
    });
    return { status: response.status, text: await response.text() };
  };

  let response = await send();
  if (response.status === 202) {
    const approval = pendingApproval(response.text);
    if (!approval) return result(response);
    const outcome = await context.awaitApproval(approval.id, approval.expiresAt);
    if (outcome.decision === "expired") return failed("Nobody approved this request in time");
    // The retry is sent after a rejection too: the hub answers it with the rejection and forgets it, so
    // the same request made later asks a person afresh.
    response = await send();
    if (outcome.decision === "rejected" && response.status === 403) {
      return failed(`A person rejected this request${outcome.message ? `: ${outcome.message}` : ""}`);
    }
  }
  return result(response);
}

function pendingApproval(text: string): { id: string; expiresAt: string | null } | null {
  try {
    const parsed = JSON.parse(text) as { approval?: { id?: unknown; expiresAt?: unknown } };
    const id = parsed.approval?.id;
    if (typeof id !== "string") return null;
    const expiresAt = parsed.approval?.expiresAt;
    return { id, expiresAt: typeof expiresAt === "string" ? expiresAt : null };
  } catch {
    return null;
  }
}

function result(response: { status: number; text: string }): ToolResult {
  const text =
    response.text.length > MAX_RESULT_CHARS
      ? `${response.text.slice(0, MAX_RESULT_CHARS)}… (truncated)`
      : response.text;
  return { content: `HTTP ${response.status}${text ? ` ${text}` : ""}`, isError: response.status >= 400 };
}
