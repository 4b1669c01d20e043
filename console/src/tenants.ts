/** The tenants the signed-in user belongs to, and the one the URL names. */
import { useQuery } from "@tanstack/react-query";
import { useParams } from "react-router";
import { api, type Page } from "./api";
import type { Schema } from "./schemas";

export type Membership = Schema<"PrincipalSummary">;

export function useMemberships() {
  return useQuery({
    queryKey: ["me", "principals"],
    queryFn: () => api<Page<Membership>>("GET", "/api/me/principals?limit=100"),
  });
}

/** The `:tenantId` of the current route; the tenant screens are only mounted under it. */
export function useTenantId(): string {
  const { tenantId } = useParams();
  if (!tenantId) throw new Error("No tenant in this route");
  return tenantId;
}
