/**
 * The console's one way to call the hub: same-origin `fetch` with the session cookie, JSON in and out,
 * and the API's error envelope (`{ error: { code, message, requestId } }`) turned into an `ApiError`.
 */

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;

  constructor(status: number, code: string, message: string, requestId?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

type Method = "GET" | "POST" | "PATCH" | "PUT" | "DELETE";

export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The hub cannot be reached. Check your connection and try again.");
  }
  const text = await res.text();
  const json = text ? safeJson(text) : null;
  if (!res.ok) {
    const envelope = (json as { error?: { code?: string; message?: string; requestId?: string } } | null)?.error;
    throw new ApiError(
      res.status,
      envelope?.code ?? "http_error",
      envelope?.message ?? `The hub answered ${res.status} ${res.statusText}`,
      envelope?.requestId,
    );
  }
  return json as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A page of a list route: `data` and the cursor of the next page (null on the last). */
export type Page<T> = { data: T[]; nextCursor: string | null };

/** The path of a tenant's resource: `tenantPath(t, "agents/definitions")`. */
export function tenantPath(tenantId: string, rest = ""): string {
  return `/api/tenants/${encodeURIComponent(tenantId)}${rest ? `/${rest}` : ""}`;
}

/** Adds the query parameters that have a value. */
export function withQuery(path: string, query: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}
