/**
 * The roles every tenant is born with and their grants. `admin` also gets `write` (mail to instances,
 * git push); only `owner` holds `*` on everything.
 */
import type { grantEffects } from "../db/schema";

export type SystemRoleName = "owner" | "admin" | "member";

export const systemRoles: Record<
  SystemRoleName,
  { description: string; grants: { resource: string; action: string; effect: (typeof grantEffects)[number] }[] }
> = {
  owner: {
    description: "System owner role: every action on every resource",
    grants: [{ resource: "*", action: "*", effect: "allow" }],
  },
  admin: {
    description: "System admin role: read, create, manage and write everything",
    grants: ["read", "create", "manage", "write"].map((action) => ({
      resource: "*",
      action,
      effect: "allow" as const,
    })),
  },
  member: {
    description: "System member role: read everything",
    grants: [{ resource: "*", action: "read", effect: "allow" }],
  },
};
