/**
 * Packs as streams: byte arrays and streams joined in order, and every stored pack of a repository as one
 * pack (a full clone's answer, and what compaction stores) without inflating anything.
 */
import { createHash } from "node:crypto";
import { largeChunks } from "../../lib/large-chunks";
import { GitFormatError } from "../objects/errors";
import { PACK_HEADER_SIZE, PACK_SIGNATURE, PACK_TRAILER_SIZE } from "../pack/reader";
import { FLUSH_PKT } from "../protocol/pkt-line";
import {
  progressPackets,
  type SideBandMode,
  type SideBandStreamOptions,
  sideBandFramesOf,
  sideBandPackets,
} from "../protocol/side-band";
import { packKey, streamPack } from "../storage/pack-files";
import type { PackRow } from "../storage/repositories";

/** A stream of these byte arrays. */
export function bytesStream(parts: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

/** Concatenates streams in order. */
export function concatStreams(
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

/**
 * Every stored pack, entries only, under one header and trailer. Stored packs never hold ofs-deltas that
 * point outside themselves, and ref-delta bases are in some stored pack, so the result is a valid pack.
 */
export function concatenatedPacks(
  bucket: R2Bucket,
  repositoryId: string,
  packs: readonly PackRow[],
  onChecksum?: (checksum: string) => void,
) {
  const storedEntries = async (pack: PackRow) => {
    const stored = await streamPack(bucket, repositoryId, pack.id);
    if (!stored) throw new GitFormatError(`pack ${pack.id} is missing from storage`);
    return stored;
  };
  const [only] = packs;
  // One pack already is the answer, header and trailer included: the same bytes, without hashing them again.
  if (only && packs.length === 1 && !onChecksum) {
    return concatStreams([async () => largeChunks((await storedEntries(only)).body)]);
  }
  const hash = createHash("sha1");
  const header = packHeader(packs.reduce((n, p) => n + p.objectCount, 0));
  hash.update(header);
  const entriesOf = (pack: PackRow) => async () => {
    const stored = await storedEntries(pack);
    const from = PACK_HEADER_SIZE;
    const to = stored.size - PACK_TRAILER_SIZE;
    let position = 0;
    return largeChunks(stored.body).pipeThrough(
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
      onChecksum?.(digest.toString("hex"));
      return bytesStream([new Uint8Array(digest.buffer, digest.byteOffset, digest.length)]);
    },
  ]);
}

/** The size of `concatenatedPacks(packs)`: one header and trailer around every pack's entries. */
export function concatenatedPackBytes(packs: readonly PackRow[]): number {
  return (
    packs.reduce((n, p) => n + p.packBytes - PACK_HEADER_SIZE - PACK_TRAILER_SIZE, 0) +
    PACK_HEADER_SIZE +
    PACK_TRAILER_SIZE
  );
}

/** A stream of what the generator yields; cancelling the stream ends the generator (its `finally` runs). */
function generatedStream(generator: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await generator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await generator.return(undefined);
    },
  });
}

/** The 12 bytes that open a version-2 pack of `count` objects. */
function packHeader(count: number): Uint8Array {
  const header = new Uint8Array(PACK_HEADER_SIZE);
  const view = new DataView(header.buffer);
  view.setUint32(0, PACK_SIGNATURE);
  view.setUint32(4, 2);
  view.setUint32(8, count);
  return header;
}

/**
 * `concatenatedPacks` as side-band frames, for a full clone: each stored pack is read from R2 straight into
 * its frames. A single pack is sent as stored; several are read without their own header and trailer, under
 * one header and a trailer hashed on the way.
 */
export function sideBandStoredPacks(
  bucket: R2Bucket,
  repositoryId: string,
  packs: readonly PackRow[],
  mode: SideBandMode,
  options: SideBandStreamOptions = {},
): ReadableStream<Uint8Array> {
  async function* frames(): AsyncGenerator<Uint8Array> {
    for (const line of options.progress ?? []) yield progressPackets(line, mode);
    const hash = packs.length === 1 ? null : createHash("sha1");
    if (hash) {
      const header = packHeader(packs.reduce((n, p) => n + p.objectCount, 0));
      hash.update(header);
      yield* sideBandPackets(1, header, mode);
    }
    for (const pack of packs) {
      const range = hash
        ? { offset: PACK_HEADER_SIZE, length: pack.packBytes - PACK_HEADER_SIZE - PACK_TRAILER_SIZE }
        : undefined;
      const stored = await bucket.get(packKey(repositoryId, pack.id), range ? { range } : undefined);
      if (!stored) throw new GitFormatError(`pack ${pack.id} is missing from storage`);
      yield* sideBandFramesOf(stored.body, mode, hash ? (data) => hash.update(data) : undefined);
    }
    if (hash) {
      const digest = hash.digest();
      yield* sideBandPackets(1, new Uint8Array(digest.buffer, digest.byteOffset, digest.length), mode);
    }
    if (options.endWithFlush) yield FLUSH_PKT;
  }
  return generatedStream(frames());
}
