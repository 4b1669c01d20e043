/**
 * Records a change in the audit log from a route, after the domain call succeeded (a refused request
 * throws before reaching it, so it writes nothing). Who, from where and the request id come from the
 * context; the route names the action, the object and the fields it changed.
 */
import type { Context } from "hono";
import { getDb } from "../db/client";
import { recordAudit } from "../tenancy/audit";
import type { AppEnv } from "./context";

/** The tenant and acting principal, for routes outside `/api/tenants/{tenantId}` (`/api/me/...`). */
export type AuditScope = { tenantId: string; principalId: string | null };

export function clientIp(c: Context<AppEnv>): string | null {
  const direct = c.req.header("cf-connecting-ip");
  if (direct) return direct.slice(0, 64);
  const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
  return forwarded ? forwarded.slice(0, 64) : null;
}

/** The listed fields of a request body that it actually set: the summary an entry keeps. */
export function fieldsOf(body: object, keys: readonly string[]): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = (body as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : null;
}

export async function audit(
  c: Context<AppEnv>,
  action: string,
  resource: { type: string; id: string },
  changes: Record<string, unknown> | null = null,
  scope?: AuditScope,
): Promise<void> {
  const tenantId = scope?.tenantId ?? c.get("tenant").id;
  const actorPrincipalId = scope ? scope.principalId : c.get("principal").id;
  const entry = {
    tenantId,
    action,
    resourceType: resource.type,
    resourceId: resource.id,
    actorPrincipalId,
    actorUserId: c.get("user")?.id ?? null,
    changes,
    ip: clientIp(c),
    userAgent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    requestId: c.get("requestId"),
  };
  try {
    await recordAudit(getDb(c.env), entry);
  } catch (err) {
    // The change itself is done: answering 500 would make clients retry it. The log keeps the entry.
    console.error(`[${entry.requestId}] audit entry not recorded`, JSON.stringify(entry), err);
  }
}
