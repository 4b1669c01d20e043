/**
 * upload-pack over stateless HTTP, protocol v0/v1 (`uploadPack`) and v2 `fetch` (`fetchV2`): validate the
 * wants, negotiate, compute the shallow boundary, and stream the pack.
 *
 * Two ways to build the pack:
 * - a full clone of every ref, with no pack repeating another's objects, streams the stored packs one after
 *   another under a new header and trailer: no object is inflated, so it runs at R2 read speed;
 * - anything else enumerates the objects to send and copies their stored entries (deltas become ref-deltas
 *   against a base the client gets or has), inflating only what cannot be copied.
 */
import { createHash } from "node:crypto";
import { GitFormatError } from "../objects/errors";
import { OFS_DELTA, REF_DELTA } from "../objects/object";
import { oidToBytes } from "../objects/oid";
import { encodeEntryHeader } from "../pack/entry";
import { PACK_HEADER_SIZE, PACK_SIGNATURE, PACK_TRAILER_SIZE } from "../pack/reader";
import { type PackWriterInput, writePack } from "../pack/writer";
import { type AdvertisedRef, UPLOAD_PACK_CAPABILITIES, visibleRefs } from "../protocol/advertisement";
import { negotiatedCapabilities } from "../protocol/capabilities";
import { formatShallowUpdate, negotiate } from "../protocol/negotiation";
import { concatBytes, encodeErr } from "../protocol/pkt-line";
import { negotiatedSideBand, sideBandStream } from "../protocol/side-band";
import { type UploadRequest, wantsShallowUpdate } from "../protocol/upload-request";
import { formatAcknowledgments, formatShallowInfo, PACKFILE_SECTION } from "../protocol/v2";
import type { ObjectStore } from "../storage/object-store";
import { streamPack } from "../storage/pack-files";
import type { PackRow } from "../storage/repositories";
import { planFetch, wantsReachCommons } from "./reachability";

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

function bytesStream(parts: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

/** Concatenates streams in order. */
function concatStreams(
  parts: readonly (Uint8Array | (() => ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>))[],
) {
  let index = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (reader) {
          const { done, value } = await reader.read();
          if (!done) {
            controller.enqueue(value);
            return;
          }
          reader = null;
        }
        const part = parts[index++];
        if (part === undefined) {
          controller.close();
          return;
        }
        if (part instanceof Uint8Array) {
          controller.enqueue(part);
          return;
        }
        reader = (await part()).getReader();
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  });
}

/** A refusal git shows to the user: `ERR <message>` (HTTP 200, as upload-pack does). */
export function uploadPackError(message: string): ReadableStream<Uint8Array> {
  return bytesStream([encodeErr(message)]);
}

/**
 * Every stored pack, entries only, under one header and trailer. Stored packs never hold ofs-deltas that
 * point outside themselves, and ref-delta bases are in some stored pack, so the result is a valid pack.
 */
function concatenatedPacks(bucket: R2Bucket, repositoryId: string, packs: readonly PackRow[]) {
  const hash = createHash("sha1");
  const count = packs.reduce((n, p) => n + p.objectCount, 0);
  const header = new Uint8Array(PACK_HEADER_SIZE);
  const view = new DataView(header.buffer);
  view.setUint32(0, PACK_SIGNATURE);
  view.setUint32(4, 2);
  view.setUint32(8, count);
  hash.update(header);
  const entriesOf = (pack: PackRow) => async () => {
    const stored = await streamPack(bucket, repositoryId, pack.id);
    if (!stored) throw new GitFormatError(`pack ${pack.id} is missing from storage`);
    const from = PACK_HEADER_SIZE;
    const to = stored.size - PACK_TRAILER_SIZE;
    let position = 0;
    return stored.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          const start = Math.max(from - position, 0);
          const end = Math.min(to - position, chunk.length);
          position += chunk.length;
          if (end > start) {
            const slice = chunk.subarray(start, end);
            hash.update(slice);
            controller.enqueue(slice);
          }
        },
      }),
    );
  };
  return concatStreams([
    header,
    ...packs.map(entriesOf),
    () => {
      const digest = hash.digest();
      return bytesStream([new Uint8Array(digest.buffer, digest.byteOffset, digest.length)]);
    },
  ]);
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

type WantCheck = { error: string } | { visible: AdvertisedRef[]; allRefsVisible: boolean };

/** Wants must be visible tips or objects reachable from them (allow-reachable-sha1-in-want). */
async function checkWants(input: UploadPackInput): Promise<WantCheck> {
  const { request, store } = input;
  if (request.wants.length === 0) return { error: "upload-pack: no want lines" };
  if (request.filter !== null) return { error: "upload-pack: filter is not supported" };
  if (request.deepenSince !== null || request.deepenNot.length > 0) {
    return { error: "upload-pack: deepen-since and deepen-not are not supported; use --depth" };
  }
  const visible = visibleRefs(input.refs, input.refPattern);
  const tips = new Set<string>();
  for (const ref of visible) {
    tips.add(ref.oid);
    if (ref.peeled) tips.add(ref.peeled);
  }
  // The walk is done once, and only when some want is not a tip.
  let reachable: Set<string> | null = null;
  for (const want of new Set(request.wants)) {
    if (tips.has(want)) continue;
    if (!store.has(want)) return { error: `upload-pack: not our ref ${want}` };
    reachable ??= new Set((await planFetch(store, { wants: [...tips], haves: [] })).objects.map((o) => o.oid));
    if (!reachable.has(want)) return { error: `upload-pack: not our ref ${want}` };
  }
  return { visible, allRefsVisible: visible.length === input.refs.length };
}

type FetchPlanResult = Awaited<ReturnType<typeof planFetch>>;

/** The shallow boundary of a request with a depth or client shallows. */
function planShallow(input: UploadPackInput): Promise<FetchPlanResult> {
  const { request } = input;
  return planFetch(input.store, {
    wants: request.wants,
    haves: request.shallows.length > 0 ? [] : request.haves,
    depth: request.depth ?? undefined,
    clientShallows: request.shallows,
  });
}

/** The pack for the wants minus what `commons` reach, honouring the shallow plan and the features. */
async function buildPack(
  input: UploadPackInput,
  check: Exclude<WantCheck, { error: string }>,
  caps: ReadonlySet<string>,
  commons: readonly string[],
  shallowPlan: FetchPlanResult | null,
): Promise<ReadableStream<Uint8Array>> {
  const { request, store } = input;
  const fullClone =
    !shallowPlan &&
    commons.length === 0 &&
    request.shallows.length === 0 &&
    check.allRefsVisible &&
    input.packs.every((p) => p.duplicateObjects === 0) &&
    input.refs.every((r) => request.wants.includes(r.oid));
  if (fullClone) return concatenatedPacks(input.bucket, input.repositoryId, input.packs);
  const plan =
    shallowPlan && request.shallows.length === 0 && commons.length === 0
      ? shallowPlan
      : await planFetch(store, {
          wants: request.wants,
          haves: commons,
          depth: request.depth ?? undefined,
          clientShallows: request.shallows,
          includeTags: caps.has("include-tag") ? peeledTags(check.visible) : undefined,
        });
  const sending = new Set(plan.objects.map((o) => o.oid));
  return plannedPack(store, plan.objects, sending, caps.has("thin-pack") ? plan.clientHas : null);
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
  const shallowPlan = wantsShallowUpdate(request) ? await planShallow(input) : null;
  if (shallowPlan) {
    parts.push(formatShallowUpdate({ shallow: shallowPlan.shallow, unshallow: shallowPlan.unshallow }));
  }

  // A request that ends after the wants (the first round of a shallow fetch) gets only the shallow
  // section: git's upload-pack stops at the end of the request before answering ACK/NAK.
  if (request.haves.length === 0 && !request.done) return bytesStream(parts);

  const shallowRequest = request.depth !== null || request.shallows.length > 0;
  const negotiation = await negotiate({
    haves: request.haves,
    done: request.done,
    capabilities: caps,
    isCommon: async (oid) => store.has(oid),
    // Deepening moves the boundary past the commons: such a client negotiates until it says done.
    isReady: shallowRequest ? undefined : (commons) => wantsReachCommons(store, request.wants, commons),
  });
  parts.push(negotiation.bytes);
  if (!negotiation.sendPack) return bytesStream(parts);

  const pack = await buildPack(input, check, caps, negotiation.commons, shallowPlan);
  const sideBand = negotiatedSideBand(caps);
  if (!sideBand) return concatStreams([...parts, () => pack]);
  const framed = pack.pipeThrough(sideBandStream(sideBand, { progress: progressLines(caps), endWithFlush: true }));
  return concatStreams([...parts, () => framed]);
}

/**
 * Serves one protocol v2 `fetch` (gitprotocol-v2): a round without `done` gets the acknowledgments
 * section; with `done`, the shallow-info section when the client is or wants to be shallow, then the
 * side-banded pack.
 */
export async function fetchV2(input: UploadPackInput): Promise<ReadableStream<Uint8Array>> {
  const { request, store } = input;
  const caps = new Set(request.capabilities);
  const check = await checkWants(input);
  if ("error" in check) return uploadPackError(check.error);
  const commons = [...new Set(request.haves)].filter((oid) => store.has(oid));
  const shallowRequest = request.depth !== null || request.shallows.length > 0;
  const parts: Uint8Array[] = [];
  if (!request.done) {
    // Ready when every want reaches a common: the pack follows in this response and the client stops
    // sending haves (with many refs, that saves it round after round). A deepening client negotiates on.
    const ready = !shallowRequest && (await wantsReachCommons(store, request.wants, commons));
    parts.push(formatAcknowledgments(commons, ready));
    if (!ready) return bytesStream(parts);
  }

  const shallowPlan = shallowRequest ? await planShallow(input) : null;
  if (shallowPlan) parts.push(formatShallowInfo({ shallow: shallowPlan.shallow, unshallow: shallowPlan.unshallow }));
  const pack = await buildPack(input, check, caps, commons, shallowPlan);
  const framed = pack.pipeThrough(
    sideBandStream("side-band-64k", { progress: progressLines(caps), endWithFlush: true }),
  );
  return concatStreams([...parts, PACKFILE_SECTION, () => framed]);
}

function peeledTags(refs: readonly AdvertisedRef[]): Map<string, string> {
  const tags = new Map<string, string>();
  for (const ref of refs) if (ref.peeled) tags.set(ref.oid, ref.peeled);
  return tags;
}
