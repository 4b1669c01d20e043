/**
 * Grant and role changes reach running instances at once (`grants.update`), not only when their sidecar
 * reconnects: after a change, every live instance whose principal it touches gets its fresh grant set.
 */
import { and, eq, inArray, or } from "drizzle-orm";
import { collectGrants } from "../authz/grant-store";
import type { Db } from "../db/client";
import { agentInstance, principalRole } from "../db/schema";
import { toWireGrants } from "./sidecar-config";
import { instanceObject } from "./stubs";

export type GrantTarget = { principalId?: string | null; roleId?: string | null };

export async function pushGrantUpdates(env: Env, db: Db, tenantId: string, target: GrantTarget): Promise<number> {
  const touched = [];
  if (target.principalId) touched.push(eq(agentInstance.principalId, target.principalId));
  if (target.roleId) {
    touched.push(
      inArray(
        agentInstance.principalId,
        db.select({ id: principalRole.principalId }).from(principalRole).where(eq(principalRole.roleId, target.roleId)),
      ),
    );
  }
  if (touched.length === 0) return 0;
  const instances = await db
    .select({ id: agentInstance.id, principalId: agentInstance.principalId })
    .from(agentInstance)
    .where(
      and(
        eq(agentInstance.tenantId, tenantId),
        inArray(agentInstance.status, ["deployed", "running", "updating"]),
        or(...touched),
      ),
    );
  await Promise.all(
    instances.map(async (instance) => {
      const grants = toWireGrants(await collectGrants(db, tenantId, instance.principalId));
      await instanceObject(env, instance.id)
        .pushGrants(grants)
        .catch((err: unknown) => console.error(`grants.update for ${instance.id} failed`, err));
    }),
  );
  return instances.length;
}
