/** The Hono environment every router shares: bindings plus what middleware puts in the context. */
import type { SessionInfo, SessionUser } from "../auth/better-auth";
import type { GrantRule } from "../authz/types";
import type { principal, tenant } from "../db/schema";

export type TenantRow = typeof tenant.$inferSelect;
export type PrincipalRow = typeof principal.$inferSelect;

export type AppVariables = {
  requestId: string;
  /** Set by the session middleware on every request; null when anonymous. */
  user: SessionUser | null;
  session: SessionInfo | null;
  /** Set by the tenant middleware on `/api/tenants/:tenantId/...`: the tenant, the caller's active
   * principal in it, and the caller's unexpired grants (direct and through roles). */
  tenant: TenantRow;
  principal: PrincipalRow;
  grants: GrantRule[];
};

export type AppEnv = {
  Bindings: Env;
  Variables: AppVariables;
};
