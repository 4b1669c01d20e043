/** Query keys and API paths of one instance's screen, shared by its panels and its live stream. */
import { tenantPath } from "../api";

export const instanceKeys = {
  all: (tenantId: string, instanceId: string) => ["tenant", tenantId, "instances", instanceId] as const,
  detail: (t: string, i: string) => [...instanceKeys.all(t, i), "detail"] as const,
  mail: (t: string, i: string) => [...instanceKeys.all(t, i), "mail"] as const,
  turns: (t: string, i: string) => [...instanceKeys.all(t, i), "turns"] as const,
  timeline: (t: string, i: string) => [...instanceKeys.all(t, i), "timeline"] as const,
  logs: (t: string, i: string) => [...instanceKeys.all(t, i), "logs"] as const,
  data: (t: string, i: string) => [...instanceKeys.all(t, i), "data"] as const,
};

/** The tenant's approvals (every status); the inbox and the instance page share it. */
export const approvalKeys = {
  all: (tenantId: string) => ["tenant", tenantId, "approvals"] as const,
};

export function instancePath(tenantId: string, instanceId: string, rest = ""): string {
  return tenantPath(tenantId, `agents/instances/${encodeURIComponent(instanceId)}${rest ? `/${rest}` : ""}`);
}
