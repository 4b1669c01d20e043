/**
 * The tenant's lists that several screens show (agents in selects and tables, wallets, the approvals that
 * wait): one query each, so every screen shares one cache entry, one poll, and one invalidation.
 */
import { useQuery } from "@tanstack/react-query";
import { api, type Page, tenantPath, withQuery } from "./api";
import type { Schema } from "./schemas";

/** Lists show the first 100; screens say so when there are more. */
const LIST_LIMIT = 100;

export const tenantListKeys = {
  agents: (tenantId: string) => ["tenant", tenantId, "agents"] as const,
  wallets: (tenantId: string) => ["tenant", tenantId, "wallets"] as const,
  pendingApprovals: (tenantId: string) => ["tenant", tenantId, "approvals", "pending"] as const,
};

function listOf<T>(tenantId: string, path: string, query: Record<string, string | number> = {}) {
  return api<Page<T>>("GET", withQuery(tenantPath(tenantId, path), { limit: LIST_LIMIT, ...query }));
}

export function useAgents(tenantId: string) {
  return useQuery({
    queryKey: tenantListKeys.agents(tenantId),
    queryFn: () => listOf<Schema<"Agent">>(tenantId, "agents/definitions"),
  });
}

/** Balances move with every model call: asked for again every 5 s. */
export function useWallets(tenantId: string) {
  return useQuery({
    queryKey: tenantListKeys.wallets(tenantId),
    queryFn: () => listOf<Schema<"Wallet">>(tenantId, "wallets"),
    refetchInterval: 5_000,
  });
}

/** Agents ask on their own schedule: the approvals that wait are asked for every 3 s. */
export function usePendingApprovals(tenantId: string) {
  return useQuery({
    queryKey: tenantListKeys.pendingApprovals(tenantId),
    queryFn: () => listOf<Schema<"Approval">>(tenantId, "approvals", { status: "pending" }),
    refetchInterval: 3_000,
  });
}
