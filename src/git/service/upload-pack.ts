/**
 * upload-pack over stateless HTTP, protocol v0/v1 (`uploadPack`) and v2 `fetch` (`fetchV2`): validate the
 * wants, negotiate, compute the shallow boundary (depth, deepen-since, deepen-not, deepen-relative), and
 * stream the pack, less what a partial clone's filter leaves out.
 *
 * Two ways to build the pack:
 * - a full clone of every ref, with no pack repeating another's objects, streams the stored packs one after
 *   another under a new header and trailer: no object is inflated, so it runs at R2 read speed;
 * - anything else enumerates the objects to send and copies their stored entries (deltas become ref-deltas
 *   against a base the client gets or has), inflating only what cannot be copied.
 */
import { GitFormatError } from "../objects/errors";
import { OFS_DELTA, REF_DELTA } from "../objects/object";
import { oidToBytes } from "../objects/oid";
import { encodeEntryHeader } from "../pack/entry";
import { type PackWriterInput, writePack } from "../pack/writer";
import { type AdvertisedRef, UPLOAD_PACK_CAPABILITIES, visibleRefs } from "../protocol/advertisement";
import { negotiatedCapabilities } from "../protocol/capabilities";
import { isProtocolError, ProtocolError } from "../protocol/errors";
import { parseFilterSpec } from "../protocol/filter-spec";
import { formatShallowUpdate, negotiate } from "../protocol/negotiation";
import { concatBytes, encodeErr } from "../protocol/pkt-line";
import { refsMatching } from "../protocol/ref-name";
import { negotiatedSideBand, type SideBandMode, sideBandStream } from "../protocol/side-band";
import { type UploadRequest, wantsShallowUpdate } from "../protocol/upload-request";
import { formatAcknowledgments, formatShallowInfo, PACKFILE_SECTION } from "../protocol/v2";
import type { ObjectStore } from "../storage/object-store";
import type { PackRow } from "../storage/repositories";
import { type FilterPolicy, filterPolicy, storedObjectSize } from "./object-filter";
import { bytesStream, concatenatedPacks, concatStreams, sideBandStoredPacks } from "./pack-streams";
import { type FetchObjects, planFetch, reachableTargets, wantsReachCommons } from "./reachability";
import { relativeBoundary, revListBoundary } from "./shallow-boundary";

export type UploadPackInput = {
  bucket: R2Bucket;
  repositoryId: string;
  refs: readonly AdvertisedRef[];
  packs: readonly PackRow[];
  store: ObjectStore;
  request: UploadRequest;
  /** The token's ref pattern: only refs it matches (and what they reach) may be fetched. */
  refPattern: string | null;
};

/** A refusal git shows to the user: `ERR <message>` (HTTP 200, as upload-pack does). */
export function uploadPackError(message: string): ReadableStream<Uint8Array> {
  return bytesStream([encodeErr(message)]);
}

/** The pack of a fetch plan: stored entries copied where possible. */
function plannedPack(
  store: ObjectStore,
  objects: readonly { oid: string }[],
  sending: Set<string>,
  thinBases: Set<string> | null,
) {
  async function* entries(): AsyncGenerator<PackWriterInput> {
    for (const { oid } of objects) {
      const found = store.locate(oid);
      if (!found) throw new GitFormatError(`object ${oid} is missing`);
      const entry = await store.rawEntryAt(found.pack, found.offset);
      if (entry.code !== OFS_DELTA && entry.code !== REF_DELTA) {
        yield { raw: entry.bytes };
        continue;
      }
      const baseOid = entry.baseOid ?? store.oidAt(found.pack, entry.baseOffset as number);
      if (sending.has(baseOid) || thinBases?.has(baseOid)) {
        // Same compressed delta, addressed by id: valid wherever the base lands in this pack.
        const data = entry.bytes.subarray(entry.headerLength);
        yield { raw: concatBytes([encodeEntryHeader(REF_DELTA, entry.size), oidToBytes(baseOid), data]) };
      } else {
        const whole = await store.readAt(found.pack, found.offset);
        yield { type: whole.type, body: whole.body };
      }
    }
  }
  return writePack(objects.length, entries());
}

/**
 * A whole pack of what `commit` reaches, minus what `haves` reach: what the hub ships to a sidecar (a
 * deploy tree, an asset, a restored state). Streamed, so it is never held whole.
 */
export async function packOfCommit(
  store: ObjectStore,
  commit: string,
  haves: readonly string[] = [],
): Promise<ReadableStream<Uint8Array>> {
  const plan = await planFetch(store, { wants: [commit], haves: haves.filter((oid) => store.has(oid)) });
  return plannedPack(store, plan.objects, new Set(plan.objects.map((o) => o.oid)), null);
}

type WantCheck =
  | { error: string }
  | {
      visible: AdvertisedRef[];
      allRefsVisible: boolean;
      /** The partial-clone filter, or null for none. */
      filter: FilterPolicy | null;
      /** `deepen-not` names, resolved among the visible refs to what they peel to. */
      excludes: string[];
    };
type CheckedRequest = Exclude<WantCheck, { error: string }>;

/** `deepen-not <name>`: exactly one visible ref must answer to the name, as git requires. */
function resolveDeepenNot(visible: readonly AdvertisedRef[], name: string): string {
  const matches = refsMatching(
    name,
    visible.map((r) => r.name),
  );
  const ref = matches.length === 1 ? visible.find((r) => r.name === matches[0]) : undefined;
  if (!ref) {
    const why = matches.length === 0 ? "no such ref" : `ambiguous (${matches.join(", ")})`;
    throw new ProtocolError("invalid_request", `deepen-not ${name}: ${why}`);
  }
  return ref.peeled ?? ref.oid;
}

/**
 * Wants must be visible tips or objects reachable from them (allow-reachable-sha1-in-want); the filter
 * must be one we serve and every `deepen-not` a visible ref.
 */
async function checkWants(input: UploadPackInput): Promise<WantCheck> {
  const { request, store } = input;
  if (request.wants.length === 0) return { error: "upload-pack: no want lines" };
  const visible = visibleRefs(input.refs, input.refPattern);
  let filter: FilterPolicy | null = null;
  let excludes: string[];
  try {
    if (request.filter !== null) {
      filter = filterPolicy(parseFilterSpec(request.filter), (oid) => storedObjectSize(store, oid));
    }
    excludes = request.deepenNot.map((name) => resolveDeepenNot(visible, name));
  } catch (err) {
    if (!isProtocolError(err)) throw err;
    return { error: `upload-pack: ${err.message}` };
  }
  const tips = new Set<string>();
  for (const ref of visible) {
    tips.add(ref.oid);
    if (ref.peeled) tips.add(ref.peeled);
  }
  // One walk for every want that is not a tip, and none when all are.
  const nonTips = [...new Set(request.wants)].filter((want) => !tips.has(want));
  const known = nonTips.filter((want) => store.has(want));
  const reachable = known.length > 0 ? await reachableTargets(store, [...tips], new Set(known)) : new Set<string>();
  const refused = nonTips.find((want) => !reachable.has(want));
  if (refused) return { error: `upload-pack: not our ref ${refused}` };
  return { visible, allRefsVisible: visible.length === input.refs.length, filter, excludes };
}

/** The haves the repository has, in request order without repeats. */
function commonsOf(haves: readonly string[], store: ObjectStore): string[] {
  return [...new Set(haves)].filter((oid) => store.has(oid));
}

/** What shapes a plan besides wants, haves and the shallow boundary. */
function planOptions(check: CheckedRequest, caps: ReadonlySet<string>) {
  return {
    includeTags: caps.has("include-tag") ? peeledTags(check.visible) : undefined,
    filter: check.filter ?? undefined,
  };
}

/**
 * The plan of a request that deepens (`wantsShallowUpdate`): the objects and the new shallow boundary.
 * `deepen <n>` is walked to its depth; deepen-since, deepen-not and deepen-relative draw the boundary
 * first, then the pack's walk stops at it.
 */
async function planDeepening(
  input: UploadPackInput,
  check: CheckedRequest,
  caps: ReadonlySet<string>,
  commons: readonly string[],
): Promise<FetchObjects | { error: string }> {
  const { request, store } = input;
  if (request.depth !== null && !request.deepenRelative) {
    return planFetch(store, {
      wants: request.wants,
      haves: commons,
      depth: request.depth,
      clientShallows: request.shallows,
      ...planOptions(check, caps),
    });
  }
  const boundary =
    request.depth !== null
      ? await relativeBoundary(store, request.shallows, request.depth)
      : await revListBoundary(store, {
          wants: request.wants,
          since: request.deepenSince,
          excludes: check.excludes,
          clientShallows: request.shallows,
        });
  if (!boundary) return { error: "upload-pack: no commits selected for shallow requests" };
  const plan = await planFetch(store, {
    wants: [...request.wants, ...boundary.parentsOfUnshallowed],
    haves: commons,
    clientShallows: [...request.shallows, ...boundary.shallow],
    ...planOptions(check, caps),
  });
  return { ...plan, shallow: boundary.shallow, unshallow: boundary.unshallow };
}

/** What a fetch sends: every stored pack as it is (a full clone), or a pack written for the request. */
type BuiltPack = { stored: readonly PackRow[] } | { written: ReadableStream<Uint8Array> };

/** The pack for the wants minus what `commons` reach; `deepened` is the plan of a deepening request. */
async function buildPack(
  input: UploadPackInput,
  check: CheckedRequest,
  caps: ReadonlySet<string>,
  commons: readonly string[],
  deepened: FetchObjects | null,
): Promise<BuiltPack> {
  const { request, store } = input;
  const fullClone =
    !deepened &&
    !check.filter &&
    commons.length === 0 &&
    request.shallows.length === 0 &&
    check.allRefsVisible &&
    input.packs.every((p) => p.duplicateObjects === 0) &&
    input.refs.every((r) => request.wants.includes(r.oid));
  if (fullClone) return { stored: input.packs };
  const plan =
    deepened ??
    (await planFetch(store, {
      wants: request.wants,
      haves: commons,
      clientShallows: request.shallows,
      ...planOptions(check, caps),
    }));
  const sending = new Set(plan.objects.map((o) => o.oid));
  // A filtered client may lack what its own commits name: no delta against a base it only might have.
  const thinBases = caps.has("thin-pack") && !check.filter ? plan.clientHas : null;
  return { written: plannedPack(store, plan.objects, sending, thinBases) };
}

/** The built pack in side-band frames, ending with a flush. */
function sideBanded(input: UploadPackInput, pack: BuiltPack, mode: SideBandMode, caps: ReadonlySet<string>) {
  const options = { progress: progressLines(caps), endWithFlush: true };
  if ("stored" in pack) return sideBandStoredPacks(input.bucket, input.repositoryId, pack.stored, mode, options);
  return pack.written.pipeThrough(sideBandStream(mode, options));
}

function progressLines(caps: ReadonlySet<string>): string[] {
  return caps.has("no-progress") ? [] : ["agent-hub: sending pack\n"];
}

/** Serves one v0/v1 upload-pack request; the result is the whole response body. */
export async function uploadPack(input: UploadPackInput): Promise<ReadableStream<Uint8Array>> {
  const { request, store } = input;
  const caps = negotiatedCapabilities(request.capabilities, UPLOAD_PACK_CAPABILITIES);
  const check = await checkWants(input);
  if ("error" in check) return uploadPackError(check.error);

  const parts: Uint8Array[] = [];
  let deepened: FetchObjects | null = null;
  if (wantsShallowUpdate(request)) {
    const planned = await planDeepening(input, check, caps, commonsOf(request.haves, store));
    if ("error" in planned) return uploadPackError(planned.error);
    deepened = planned;
    parts.push(formatShallowUpdate(deepened));
  }

  // A request that ends after the wants (the first round of a shallow fetch) gets only the shallow
  // section: git's upload-pack stops at the end of the request before answering ACK/NAK.
  if (request.haves.length === 0 && !request.done) return bytesStream(parts);

  const shallowClient = deepened !== null || request.shallows.length > 0;
  const negotiation = await negotiate({
    haves: request.haves,
    done: request.done,
    capabilities: caps,
    isCommon: async (oid) => store.has(oid),
    // Deepening moves the boundary past the commons: such a client negotiates until it says done.
    isReady: shallowClient ? undefined : (commons) => wantsReachCommons(store, request.wants, commons),
  });
  parts.push(negotiation.bytes);
  if (!negotiation.sendPack) return bytesStream(parts);

  const pack = await buildPack(input, check, caps, negotiation.commons, deepened);
  const sideBand = negotiatedSideBand(caps);
  if (!sideBand) {
    const bytes = "stored" in pack ? concatenatedPacks(input.bucket, input.repositoryId, pack.stored) : pack.written;
    return concatStreams([...parts, () => bytes]);
  }
  const framed = sideBanded(input, pack, sideBand, caps);
  return concatStreams([...parts, () => framed]);
}

/**
 * Serves one protocol v2 `fetch` (gitprotocol-v2): a round without `done` gets the acknowledgments
 * section, and the pack too once the server is ready; then the shallow-info section when the client is or
 * wants to be shallow, then the side-banded pack.
 */
export async function fetchV2(input: UploadPackInput): Promise<ReadableStream<Uint8Array>> {
  const { request, store } = input;
  const caps = new Set(request.capabilities);
  const check = await checkWants(input);
  if ("error" in check) return uploadPackError(check.error);
  const commons = commonsOf(request.haves, store);
  const deepens = wantsShallowUpdate(request);
  const shallowClient = deepens || request.shallows.length > 0;
  const parts: Uint8Array[] = [];
  if (!request.done) {
    // Ready when every want reaches a common: the pack follows in this response and the client stops
    // sending haves (with many refs, that saves it round after round). A deepening client negotiates on.
    const ready = !shallowClient && (await wantsReachCommons(store, request.wants, commons));
    parts.push(formatAcknowledgments(commons, ready));
    if (!ready) return bytesStream(parts);
  }

  let deepened: FetchObjects | null = null;
  if (deepens) {
    const planned = await planDeepening(input, check, caps, commons);
    if ("error" in planned) return uploadPackError(planned.error);
    deepened = planned;
  }
  if (shallowClient) parts.push(formatShallowInfo(deepened ?? { shallow: [], unshallow: [] }));
  const pack = await buildPack(input, check, caps, commons, deepened);
  const framed = sideBanded(input, pack, "side-band-64k", caps);
  return concatStreams([...parts, PACKFILE_SECTION, () => framed]);
}

function peeledTags(refs: readonly AdvertisedRef[]): Map<string, string> {
  const tags = new Map<string, string>();
  for (const ref of refs) if (ref.peeled) tags.set(ref.oid, ref.peeled);
  return tags;
}
