import { isProtocolError } from "./errors";
import type { NegotiationResult } from "./negotiation";
import { concatBytes } from "./pkt-line";
import { fatalPackets, type SideBandMode, sideBandStream } from "./side-band";

export interface UploadResponseParts {
  /** `formatShallowUpdate(...)` when `wantsShallowUpdate(request)`, else null. */
  shallowUpdate?: Uint8Array | null;
  negotiation: NegotiationResult;
  /** The packfile, needed when `negotiation.sendPack`; ignored (cancelled) otherwise. */
  pack?: ReadableStream<Uint8Array> | null;
  /** From `negotiatedSideBand(caps)`; null sends the pack raw, as git does without side-band. */
  sideBand: SideBandMode | null;
  /** Progress lines on band 2 before the pack (omit when the client asked `no-progress`). */
  progress?: readonly string[];
}

/**
 * The body of a `git-upload-pack` response: the shallow section, the ACK/NAK lines, then (when the round
 * ends in a pack) the pack side-banded and a flush. If the pack stream fails midway, a side-banded
 * response ends with a band-3 message the client prints (the pack's own message when it is a
 * ProtocolError) instead of a silently cut stream.
 */
export function uploadPackResponse(parts: UploadResponseParts): ReadableStream<Uint8Array> {
  const head = concatBytes([parts.shallowUpdate ?? new Uint8Array(0), parts.negotiation.bytes]);
  const pack = parts.negotiation.sendPack ? (parts.pack ?? null) : null;
  if (!parts.negotiation.sendPack && parts.pack) void parts.pack.cancel().catch(() => {});
  if (parts.negotiation.sendPack && !pack) throw new Error("uploadPackResponse: the negotiation ends in a pack");

  const mode = parts.sideBand;
  const body =
    pack && mode ? pack.pipeThrough(sideBandStream(mode, { progress: parts.progress, endWithFlush: true })) : pack;
  const reader = body?.getReader() ?? null;
  let headSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headSent) {
        headSent = true;
        if (head.length > 0) {
          controller.enqueue(head);
          return;
        }
      }
      if (!reader) {
        controller.close();
        return;
      }
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        if (!mode) throw err;
        const message = isProtocolError(err) ? err.message : "pack generation failed";
        controller.enqueue(fatalPackets(`upload-pack: ${message}`, mode));
        controller.close();
      }
    },
    cancel(reason) {
      return reader?.cancel(reason);
    },
  });
}
