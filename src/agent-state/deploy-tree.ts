/**
 * What a launch gives the sidecar besides its config: the definition's `deploy/` tree (the prompt as
 * launched and the manifest of attached assets), committed and signed by the hub when it changed, and
 * each attached asset at the commit its ref names. Skills are also announced in the prompt.
 */
import { assetRepositoryId, listAttachments } from "../assets/assets";
import { skillsOfCommit } from "../assets/skills";
import type { Db } from "../db/client";
import { ApiError } from "../errors";
import { commitOnRef } from "../git/service/hub-commit";
import { openRepository } from "../git/service/repository";
import type { RepoId } from "../runtime/protocol";
import { hubSigningKey } from "../secrets/hub-signing-key";
import { DEPLOY_REF, stateRepositoryId } from "./repositories";

/** A pack the hub ships to the sidecar: every object `commitSha` reaches in `repositoryId`. */
export type ShippedPack = {
  repositoryId: string;
  repoId: RepoId;
  ref: string;
  commitSha: string;
  mountPath?: string;
  /** For an asset: its attachment (the session records which version it got). */
  agentAssetId?: string;
};

export type DeployTree = { systemPrompt: string; deployCommit: string; packs: ShippedPack[] };

type ManifestAsset = {
  assetId: string;
  name: string;
  kind: string;
  ref: string;
  commitSha: string;
  mountPath: string;
};

const encoder = new TextEncoder();

const escapeXml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The prompt's list of skills, in the form agents are trained to read. */
export function skillsStanza(skills: readonly { asset: string; name: string; description: string }[]): string {
  if (skills.length === 0) return "";
  const entries = skills.map(
    (s) =>
      `<skill>\n<name>${escapeXml(`${s.asset}/${s.name}`)}</name>\n<description>${escapeXml(s.description)}</description>\n` +
      `<path>${escapeXml(`workspace/skills/${s.asset}/${s.name}/`)}</path>\n</skill>`,
  );
  return `<available_skills>\n${entries.join("\n\n")}\n</available_skills>`;
}

/** Resolves the attachments, writes the deploy tree, and lists the packs to ship. */
export async function writeDeployTree(
  env: Env,
  db: Db,
  input: { tenantId: string; agentId: string; systemPrompt: string; now?: Date },
): Promise<DeployTree> {
  const attachments = await listAttachments(db, input.tenantId, input.agentId);
  const manifest: ManifestAsset[] = [];
  const packs: ShippedPack[] = [];
  const skills: { asset: string; name: string; description: string }[] = [];
  for (const { attachment, asset } of attachments) {
    const repositoryId = assetRepositoryId(asset.id);
    const { refs, store } = await openRepository(db, env.BLOBS, repositoryId);
    const commitSha = refs.find((r) => r.name === attachment.ref)?.oid;
    if (!commitSha) {
      throw new ApiError(
        409,
        "not_launchable",
        `Attached asset ${asset.name} has no ${attachment.ref}: push it first or attach another ref`,
      );
    }
    const mountPath = `skills/${asset.name}/`;
    if (asset.kind === "skill") {
      const found = await skillsOfCommit(commitSha, store);
      if ("error" in found) {
        throw new ApiError(409, "not_launchable", `Attached skill ${asset.name} is invalid: ${found.error}`);
      }
      for (const skill of found.skills) skills.push({ asset: asset.name, ...skill });
    }
    manifest.push({ assetId: asset.id, name: asset.name, kind: asset.kind, ref: attachment.ref, commitSha, mountPath });
    packs.push({
      repositoryId,
      repoId: { kind: asset.kind as RepoId["kind"], id: asset.id },
      ref: attachment.ref,
      commitSha,
      mountPath,
      agentAssetId: attachment.id,
    });
  }
  const stanza = skillsStanza(skills);
  const systemPrompt = stanza ? `${input.systemPrompt.trimEnd()}\n\n${stanza}\n` : input.systemPrompt;
  const repositoryId = stateRepositoryId(input.agentId);
  const { commitOid } = await commitOnRef(db, env.BLOBS, {
    repositoryId,
    tenantId: input.tenantId,
    head: DEPLOY_REF,
    ref: DEPLOY_REF,
    message: "Update deploy tree",
    key: await hubSigningKey(env.SECRETS_KEY),
    content: {
      files: new Map([
        ["deploy/prompt.md", encoder.encode(systemPrompt)],
        ["deploy/manifest.json", encoder.encode(`${JSON.stringify({ assets: manifest }, null, 2)}\n`)],
      ]),
    },
    skipWhenUnchanged: true,
    now: input.now,
  });
  const deployPack: ShippedPack = {
    repositoryId,
    repoId: { kind: "agent-state", id: input.agentId },
    ref: DEPLOY_REF,
    commitSha: commitOid,
  };
  return { systemPrompt, deployCommit: commitOid, packs: [deployPack, ...packs] };
}
