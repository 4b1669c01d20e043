/** The Hono environment every router shares: bindings plus what middleware puts in the context. */
import type { AgentCaller } from "../auth/agent-tokens";
import type { SessionInfo, SessionUser } from "../auth/better-auth";
import type { GrantRule } from "../authz/types";
import type { RepoAction } from "../git/protocol/repo-action";
import type { PrincipalRow } from "../tenancy/principals";
import type { TenantRow } from "../tenancy/tenants";

/** A git token that passed every check for this request, and the repository action it was checked for. */
export type GitTokenAccess = {
  id: string;
  kind: "pat" | "svc";
  userId: string;
  /** The repository, `asset:<id>` or `agent-state:<id>` (the token's claim, equal to the URL's). */
  resource: string;
  /** Refs outside this glob are neither advertised, served nor updated (`matchRefPattern`). */
  refPattern: string;
  actions: RepoAction[];
  expiresAt: Date;
  action: RepoAction;
};

export type AppVariables = {
  requestId: string;
  /** Set by the session middleware on every request; null when anonymous. */
  user: SessionUser | null;
  session: SessionInfo | null;
  /** Set by the session middleware when an agent calls with its own API token (then `user` is null). */
  agent: AgentCaller | null;
  /** Set by the tenant middleware on `/api/tenants/:tenantId/...`: the tenant, the caller's active
   * principal in it, and the caller's unexpired grants (direct and through roles). */
  tenant: TenantRow;
  principal: PrincipalRow;
  grants: GrantRule[];
  /** Set by the git token middleware on smart-HTTP routes, together with `tenant`, `principal` and `grants`. */
  gitToken: GitTokenAccess;
  /**
   * Set on smart-HTTP routes once the URL is resolved: the repository and its kind (an asset kind, or
   * `agent-state`), and for a repository that may not exist yet, the HEAD it reads as while empty.
   */
  gitRepository: { id: string; kind: string; emptyHead?: string };
};

export type AppEnv = {
  Bindings: Env;
  Variables: AppVariables;
};
