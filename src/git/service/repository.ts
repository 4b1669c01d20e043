/**
 * Serving one stored repository to git: the ref advertisement (v0 and v2 `ls-refs`) and packs for
 * fetches. Everything here answers in protocol bytes; the HTTP layer only picks the content type.
 * Refs outside the caller's ref pattern are neither advertised nor served.
 */
import type { Db } from "../../db/client";
import { notFound } from "../../errors";
import { GitFormatError } from "../objects/errors";
import { parseTag } from "../objects/object";
import {
  type AdvertisedRef,
  buildAdvertisement,
  RECEIVE_PACK_CAPABILITIES,
  UPLOAD_PACK_CAPABILITIES,
  visibleRefs,
} from "../protocol/advertisement";
import { matchRefPattern } from "../protocol/ref-pattern";
import type { GitService } from "../protocol/repo-action";
import { formatLsRefs, type LsRefsArgs } from "../protocol/v2";
import { ObjectStore } from "../storage/object-store";
import {
  getRepository,
  type PackRow,
  type RefRow,
  type RepositoryRow,
  readRepositoryState,
} from "../storage/repositories";
import { type UploadPackInput, uploadPackError } from "./upload-pack";

export const HUB_VERSION = "0.1.0";

export type OpenedRepository = { repository: RepositoryRow; refs: RefRow[]; packs: PackRow[]; store: ObjectStore };

/**
 * The repository's row, refs, pack catalog and an object store over its packs; 404 when it does not exist,
 * unless `missing` says what an absent repository is (an instance that never pushed reads as empty).
 */
export async function openRepository(
  db: Db,
  bucket: R2Bucket,
  id: string,
  missing: { head: string } | null = null,
): Promise<OpenedRepository> {
  const [found, state] = await Promise.all([getRepository(db, id), readRepositoryState(db, id)]);
  const repository = found ?? (missing ? emptyRepository(id, missing.head) : null);
  if (!repository) throw notFound("Repository not found");
  const store = await ObjectStore.open(bucket, id, state.packs);
  return { repository, ...state, store };
}

function emptyRepository(id: string, head: string): RepositoryRow {
  const epoch = new Date(0);
  return {
    id,
    tenantId: "",
    head,
    leaseToken: null,
    leaseExpiresAt: null,
    sweepRequestedAt: null,
    createdAt: epoch,
    updatedAt: epoch,
  };
}

/**
 * Refs as advertised: an annotated tag with what it peels to. Pushes keep the peeled id beside the ref, so
 * this reads no objects; only a tag ref written before that was kept is peeled from its object.
 */
export async function advertisedRefs(store: ObjectStore, refs: readonly RefRow[]): Promise<AdvertisedRef[]> {
  return Promise.all(
    refs.map(async ({ name, oid, peeled }) => {
      if (peeled) return peeled === oid ? { name, oid } : { name, oid, peeled };
      if (!name.startsWith("refs/tags/")) return { name, oid };
      const object = await store.read(oid);
      return object?.type === "tag" ? { name, oid, peeled: parseTag(object.body).object } : { name, oid };
    }),
  );
}

/** The v0 advertisement of `info/refs` for a fetch or a push. */
export async function advertise(
  db: Db,
  bucket: R2Bucket,
  id: string,
  service: GitService,
  refPattern: string,
  missing: { head: string } | null = null,
): Promise<Uint8Array> {
  const { repository, refs, store } = await openRepository(db, bucket, id, missing);
  return buildAdvertisement({
    service,
    refs: await advertisedRefs(store, refs),
    headTarget: repository.head,
    capabilities: service === "git-upload-pack" ? UPLOAD_PACK_CAPABILITIES : RECEIVE_PACK_CAPABILITIES,
    version: HUB_VERSION,
    refPattern,
  });
}

/** The v2 `ls-refs` answer; HEAD is shown only when the branch it names is visible. */
export async function listRefs(
  db: Db,
  bucket: R2Bucket,
  id: string,
  args: LsRefsArgs,
  refPattern: string,
  missing: { head: string } | null = null,
): Promise<Uint8Array> {
  const { repository, refs, store } = await openRepository(db, bucket, id, missing);
  const visible = visibleRefs(await advertisedRefs(store, refs), refPattern);
  const headTarget = repository.head;
  const headVisible = headTarget !== null && matchRefPattern(refPattern, headTarget);
  return formatLsRefs(visible, { target: headTarget, targetVisible: headVisible }, args);
}

/**
 * Runs upload-pack (a v0 fetch or a v2 `fetch`) on the repository. A broken stored object is reported to
 * git as an `ERR` it prints, not as an HTTP failure in the middle of a pack.
 */
export async function servePack(
  db: Db,
  bucket: R2Bucket,
  id: string,
  request: UploadPackInput["request"],
  refPattern: string,
  serve: (input: UploadPackInput) => Promise<ReadableStream<Uint8Array>>,
  missing: { head: string } | null = null,
): Promise<ReadableStream<Uint8Array>> {
  const { refs, packs, store } = await openRepository(db, bucket, id, missing);
  try {
    return await serve({
      bucket,
      repositoryId: id,
      refs: await advertisedRefs(store, refs),
      packs,
      store,
      request,
      refPattern,
    });
  } catch (err) {
    if (!(err instanceof GitFormatError)) throw err;
    return uploadPackError(`upload-pack: ${err.message}`);
  }
}
