/**
 * Assets: git repositories a tenant keeps skills or any other content in, served over smart HTTP and
 * attachable to agent definitions.
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { agent, agentAsset, asset, type assetAccessModes, gitRepository } from "../db/schema";
import { ApiError, badRequest, notFound } from "../errors";
import { buildGenesisPack } from "../git/service/genesis";
import { deletePackFiles, putPackFiles } from "../git/storage/pack-files";
import { createRepositoryWithContent } from "../git/storage/repositories";
import { newId } from "../lib/ids";
import type { HubSigningKey } from "../secrets/hub-signing-key";
import { checkSkillCommit } from "./skills";

export const assetKinds = ["skill", "repo"] as const;
export type AssetKind = (typeof assetKinds)[number];
export type AssetRow = typeof asset.$inferSelect;
export type AttachmentRow = typeof agentAsset.$inferSelect;
export type AccessMode = (typeof assetAccessModes)[number];

export const ASSET_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** The git repository that backs an asset. */
export const assetRepositoryId = (assetId: string) => `asset/${assetId}`;

/** What a push to an asset's repository must satisfy beyond git's own rules: skills stay valid skills. */
export function assetContentRule(kind: string) {
  return kind === "skill" ? checkSkillCommit : undefined;
}

export async function findAsset(db: Db, tenantId: string, assetId: string): Promise<AssetRow> {
  const row = await db.query.asset.findFirst({ where: and(eq(asset.id, assetId), eq(asset.tenantId, tenantId)) });
  if (!row) throw notFound("Asset not found");
  return row;
}

export async function getAssetByName(db: Db, tenantId: string, kind: string, name: string): Promise<AssetRow | null> {
  const row = await db.query.asset.findFirst({
    where: and(eq(asset.tenantId, tenantId), eq(asset.kind, kind), eq(asset.name, name)),
  });
  return row ?? null;
}

export function listAssets(db: Db, tenantId: string, page: PageQuery & { kind?: AssetKind | undefined }) {
  return paginate(
    page,
    { time: asset.createdAt, id: asset.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(asset)
        .where(and(eq(asset.tenantId, tenantId), page.kind ? eq(asset.kind, page.kind) : undefined, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/**
 * Creates the asset and its repository with a genesis commit on `main`. The pack files go to R2 first
 * (invisible until cataloged); the asset row, repository, pack catalog entry and ref land in one batch.
 */
export async function createAsset(
  db: Db,
  bucket: R2Bucket,
  signingKey: HubSigningKey,
  tenantId: string,
  creatorPrincipalId: string,
  input: { kind: string; name: string; displayName?: string | null | undefined },
  now = new Date(),
): Promise<AssetRow> {
  if (input.kind === "agent-state") {
    throw badRequest("Agent-state repositories are created by the hub, not as assets", "unsupported_kind");
  }
  if (!ASSET_NAME.test(input.name) || input.name.length > 100) {
    throw badRequest("Asset names are lowercase kebab-case (a-z, 0-9 and single dashes)", "invalid_name");
  }
  if (await getAssetByName(db, tenantId, input.kind, input.name)) {
    throw new ApiError(409, "duplicate_asset", `A ${input.kind} asset named "${input.name}" already exists`);
  }
  const id = newId("asset");
  const repositoryId = assetRepositoryId(id);
  const genesis = await buildGenesisPack(now, signingKey);
  await putPackFiles(bucket, repositoryId, genesis.packId, genesis.pack, genesis.index);
  const row = {
    id,
    tenantId,
    kind: input.kind,
    name: input.name,
    displayName: input.displayName ?? null,
    creatorPrincipalId,
    createdAt: now,
    updatedAt: now,
  };
  try {
    await db.batch([
      db.insert(asset).values(row),
      ...createRepositoryWithContent(
        db,
        repositoryId,
        tenantId,
        {
          id: genesis.packId,
          objectCount: genesis.objectCount,
          packBytes: genesis.pack.byteLength,
          indexBytes: genesis.index.byteLength,
          duplicateObjects: 0,
        },
        [{ name: "refs/heads/main", oid: genesis.commitOid }],
        now.getTime(),
      ),
    ]);
  } catch (err) {
    await deletePackFiles(bucket, repositoryId);
    if (err instanceof Error && /UNIQUE constraint failed/.test(`${err.message} ${String(err.cause ?? "")}`)) {
      throw new ApiError(409, "duplicate_asset", `A ${input.kind} asset named "${input.name}" already exists`);
    }
    throw err;
  }
  return row;
}

export async function updateAsset(
  db: Db,
  tenantId: string,
  assetId: string,
  input: { displayName?: string | null | undefined },
): Promise<AssetRow> {
  await findAsset(db, tenantId, assetId);
  const [row] = await db
    .update(asset)
    .set({ displayName: input.displayName ?? null })
    .where(and(eq(asset.id, assetId), eq(asset.tenantId, tenantId)))
    .returning();
  if (!row) throw notFound("Asset not found");
  return row;
}

/** Deletes the asset, its attachments (cascade), its repository rows and its pack files. */
export async function deleteAsset(db: Db, bucket: R2Bucket, tenantId: string, assetId: string): Promise<void> {
  await findAsset(db, tenantId, assetId);
  const repositoryId = assetRepositoryId(assetId);
  await db.batch([
    db.delete(asset).where(and(eq(asset.id, assetId), eq(asset.tenantId, tenantId))),
    db.delete(gitRepository).where(eq(gitRepository.id, repositoryId)),
  ]);
  await deletePackFiles(bucket, repositoryId);
}

// ---------------------------------------------------------------------------------------------
// Attachments to agent definitions
// ---------------------------------------------------------------------------------------------

async function findAgentInTenant(db: Db, tenantId: string, agentId: string) {
  const row = await db.query.agent.findFirst({
    where: and(eq(agent.id, agentId), eq(agent.tenantId, tenantId)),
    columns: { id: true },
  });
  if (!row) throw notFound("Agent not found");
  return row;
}

export async function listAttachments(db: Db, tenantId: string, agentId: string) {
  await findAgentInTenant(db, tenantId, agentId);
  return db
    .select({ attachment: agentAsset, asset })
    .from(agentAsset)
    .innerJoin(asset, eq(asset.id, agentAsset.assetId))
    .where(and(eq(agentAsset.agentId, agentId), eq(asset.tenantId, tenantId)))
    .orderBy(agentAsset.createdAt, agentAsset.id);
}

export async function attachAsset(
  db: Db,
  tenantId: string,
  agentId: string,
  input: { assetId: string; ref?: string | undefined; accessMode?: AccessMode | undefined },
) {
  await findAgentInTenant(db, tenantId, agentId);
  const found = await findAsset(db, tenantId, input.assetId);
  const [row] = await db
    .insert(agentAsset)
    .values({
      id: newId("agentAsset"),
      agentId,
      assetId: found.id,
      ref: input.ref ?? "refs/heads/main",
      accessMode: input.accessMode ?? "read-only",
    })
    .returning();
  if (!row) throw new Error("Attachment insert returned no row");
  return { attachment: row, asset: found };
}

export async function detachAsset(db: Db, tenantId: string, agentId: string, assetId: string): Promise<void> {
  await findAgentInTenant(db, tenantId, agentId);
  await findAsset(db, tenantId, assetId);
  const removed = await db
    .delete(agentAsset)
    .where(and(eq(agentAsset.agentId, agentId), eq(agentAsset.assetId, assetId)))
    .returning({ id: agentAsset.id });
  if (removed.length === 0) throw notFound("Asset is not attached to this agent");
}
