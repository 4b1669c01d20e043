/**
 * A sidecar's state push: a pack and the branch tip it carries, applied to the instance's repository like
 * any push (one writer at a time, checked completely before the ref moves), with the state rules: only the
 * allowed top-level entries, the tip in the pack, and a compare-and-set against the tip the sidecar last
 * saw. There is no ancestry check: the sidecar owns its history. A refused push changes nothing.
 */
import type { Db } from "../db/client";
import { ZERO_OID } from "../git/objects/oid";
import { refNameProblem } from "../git/protocol/ref-name";
import { applyPush } from "../git/service/push";
import { TIP_NOT_IN_PACK } from "../git/service/receive-pack";
import { deleteRepository, ensureRepository, getRepository, readRepositoryState } from "../git/storage/repositories";
import type { PackRejectReason } from "../runtime/protocol";
import { checkStateCommit, DEPLOY_REF, stateRepositoryId } from "./repositories";

/** A state pack is held in memory while it is checked; a Worker has 128 MB. */
export const MAX_STATE_PACK_BYTES = 64 * 1024 * 1024;

export type StatePush = {
  tenantId: string;
  instanceId: string;
  ref: string;
  commitSha: string;
  expectedOldSha: string | null;
  pack: Uint8Array;
};

export type StatePushOutcome =
  | { ok: true }
  | { ok: false; reason: PackRejectReason; message: string; currentSha: string | null };

export async function applyStatePush(db: Db, bucket: R2Bucket, push: StatePush): Promise<StatePushOutcome> {
  const repositoryId = stateRepositoryId(push.instanceId);
  const refused = async (reason: PackRejectReason, message: string): Promise<StatePushOutcome> => {
    const { refs } = await readRepositoryState(db, repositoryId);
    return { ok: false, reason, message, currentSha: refs.find((r) => r.name === push.ref)?.oid ?? null };
  };
  const refProblem = refNameProblem(push.ref);
  if (refProblem || !push.ref.startsWith("refs/heads/")) {
    return refused("path_violation", `${push.ref} is not a branch name${refProblem ? `: ${refProblem}` : ""}`);
  }
  if (push.ref === DEPLOY_REF) return refused("path_violation", `${DEPLOY_REF} is written by the hub only`);

  const existed = (await getRepository(db, repositoryId)) !== null;
  if (!existed) await ensureRepository(db, repositoryId, push.tenantId);
  const result = await applyPush(
    db,
    bucket,
    repositoryId,
    [
      {
        kind: push.expectedOldSha ? "update" : "create",
        oldOid: push.expectedOldSha ?? ZERO_OID,
        newOid: push.commitSha,
        ref: push.ref,
        refError: null,
      },
    ],
    push.pack,
    true,
    { mayUpdate: () => true, mayForce: true, tipsInPack: true, validateTip: checkStateCommit },
  );
  let outcome: StatePushOutcome;
  if (result.busy) {
    outcome = await refused(
      "conflict",
      `Another write to this repository is in progress; retry in ${result.retryInSeconds} s`,
    );
  } else if (result.unpackError) {
    outcome = await refused("corrupt", `The pack could not be read: ${result.unpackError}`);
  } else {
    const reason = result.statuses.find((s) => !s.ok)?.reason ?? null;
    outcome = reason === null ? { ok: true } : await refused(...classify(reason));
  }
  // A repository is created by its first accepted push, not by a refused one.
  if (!outcome.ok && !existed) await deleteRepository(db, repositoryId);
  return outcome;
}

function classify(reason: string): [PackRejectReason, string] {
  if (reason === "stale info" || reason === "already exists") {
    return ["non_fast_forward", "expectedOldSha is not the branch's tip on the hub"];
  }
  if (reason === TIP_NOT_IN_PACK) return ["sha_mismatch", "commitSha is not in the pack"];
  if (reason.startsWith("path_violation: ")) return ["path_violation", reason.slice("path_violation: ".length)];
  return ["corrupt", reason];
}
