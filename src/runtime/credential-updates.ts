/**
 * A credential that changes while instances run (its secret rotated, its status or expiry changed, or it
 * is deleted) reaches their sidecars at once as `sources.update`: every live instance of the credential's
 * tenant, or of a tenant below it (which inherits it), is asked to refresh; those whose sources came from
 * that credential resolve them again and send them.
 */
import { and, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { agentInstance } from "../db/schema";
import { instanceObject } from "./stubs";

const LIVE = ["deployed", "running", "updating"] as const;

/** Returns how many instances took new sources. */
export async function pushCredentialChange(
  env: Env,
  db: Db,
  credential: { id: string; tenantId: string },
): Promise<number> {
  const subtree = sql`(
    with recursive below(id) as (
      select ${credential.tenantId}
      union select t.id from tenant t join below on t.parent_id = below.id
    ) select id from below)`;
  const instances = await db
    .select({ id: agentInstance.id })
    .from(agentInstance)
    .where(and(inArray(agentInstance.status, [...LIVE]), sql`${agentInstance.tenantId} in ${subtree}`));
  const refreshed = await Promise.all(
    instances.map((instance) =>
      instanceObject(env, instance.id)
        .refreshSources(credential.id)
        .catch((err: unknown) => {
          console.error(`sources.update for ${instance.id} failed`, err);
          return false;
        }),
    ),
  );
  return refreshed.filter(Boolean).length;
}
