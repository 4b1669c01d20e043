/**
 * A sidecar's state push: a pack and the branch tip it carries, applied to the instance's repository like
 * any push (one writer at a time, checked completely before the ref moves), with the state rules: only the
 * allowed top-level entries, the tip in the pack, and a compare-and-set against the tip the sidecar last
 * saw. There is no ancestry check: the sidecar owns its history. A refused push changes nothing.
 */
import type { Db } from "../db/client";
import { ZERO_OID } from "../git/objects/oid";
import type { RefCommand } from "../git/protocol/receive-request";
import { refNameProblem } from "../git/protocol/ref-name";
import { applyPush, MAX_PUSH_BYTES } from "../git/service/push";
import { TIP_NOT_IN_PACK } from "../git/service/receive-pack";
import { deleteRepository, ensureRepository, getRepository, readRepositoryState } from "../git/storage/repositories";
import type { PackRejectReason } from "../runtime/protocol";
import { checkStateCommit, DEPLOY_REF, stateRepositoryId } from "./repositories";

/** A state pack streams to storage as it arrives, so its limit is a push's. */
export const MAX_STATE_PACK_BYTES = MAX_PUSH_BYTES;

/** What `repo.pack.done` says a state push carries; it arrives after the pack. */
export type StatePushTarget = { ref: string; commitSha: string; expectedOldSha: string | null };

export type StatePush = {
  tenantId: string;
  instanceId: string;
  /** The pack's bytes as they arrive, or null when the sidecar sent none. */
  pack: ReadableStream<Uint8Array> | null;
  target: Promise<StatePushTarget>;
};

export type StatePushOutcome =
  | { ok: true }
  | { ok: false; reason: PackRejectReason; message: string; currentSha: string | null };

/** Why a state push is refused before its commands are checked (the transfer, or the ref it names). */
export class StatePushRefused extends Error {
  constructor(
    readonly reason: PackRejectReason,
    message: string,
  ) {
    super(message);
  }
}

/** The push's one command, once the target is known and its ref acceptable. */
async function stateCommand(target: Promise<StatePushTarget>): Promise<RefCommand[]> {
  const { ref, commitSha, expectedOldSha } = await target;
  const refProblem = refNameProblem(ref);
  if (refProblem || !ref.startsWith("refs/heads/")) {
    throw new StatePushRefused("path_violation", `${ref} is not a branch name${refProblem ? `: ${refProblem}` : ""}`);
  }
  if (ref === DEPLOY_REF) throw new StatePushRefused("path_violation", `${DEPLOY_REF} is written by the hub only`);
  const kind = expectedOldSha ? "update" : "create";
  return [{ kind, oldOid: expectedOldSha ?? ZERO_OID, newOid: commitSha, ref, refError: null }];
}

export async function applyStatePush(db: Db, bucket: R2Bucket, push: StatePush): Promise<StatePushOutcome> {
  const repositoryId = stateRepositoryId(push.instanceId);
  // The ref is only known at the end; a refusal names the branch's tip when the ref is known by then.
  const refused = async (reason: PackRejectReason, message: string): Promise<StatePushOutcome> => {
    const ref = await push.target.then((t) => t.ref).catch(() => null);
    const { refs } = await readRepositoryState(db, repositoryId);
    return { ok: false, reason, message, currentSha: refs.find((r) => r.name === ref)?.oid ?? null };
  };
  const existed = (await getRepository(db, repositoryId)) !== null;
  if (!existed) await ensureRepository(db, repositoryId, push.tenantId);
  const commands = stateCommand(push.target);
  commands.catch(() => {}); // a busy repository never reads them
  let outcome: StatePushOutcome;
  try {
    const result = await applyPush(db, bucket, repositoryId, commands, push.pack, true, {
      mayUpdate: () => true,
      mayForce: true,
      tipsInPack: true,
      validateTip: checkStateCommit,
    });
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
  } catch (error) {
    if (!(error instanceof StatePushRefused)) throw error;
    outcome = await refused(error.reason, error.message);
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
