/**
 * A received pack written to R2 while it is indexed, so that no isolate ever holds a whole pack: bytes fill
 * fixed-size parts of a multipart upload (R2 wants every part but the last the same size), one part in
 * flight while the next fills. A pack smaller than one part is a single put. Once finished, the pack is read
 * back through the block cache like any stored pack.
 *
 * The pack is named by a random id, not its checksum: the name is needed before the last byte arrives. A
 * push that is refused discards what it wrote; one that dies leaves files no catalog row names, which the
 * cleanup pass removes.
 */
import { bytesToHex } from "../../lib/hex";
import type { PackSink } from "../pack/pack-input";
import { deletePack, PackFileReader, packKey } from "./pack-files";

/** Part size of the multipart upload (R2 takes 5 MiB to 5 GiB; all but the last part equal). */
export const PACK_PART_BYTES = 8 * 1024 * 1024;

export class PackUpload implements PackSink {
  readonly packId = bytesToHex(crypto.getRandomValues(new Uint8Array(20)));
  readonly #bucket: R2Bucket;
  readonly #repositoryId: string;
  readonly #partBytes: number;
  #part: Uint8Array;
  #filled = 0;
  #size = 0;
  #upload: R2MultipartUpload | null = null;
  #parts: R2UploadedPart[] = [];
  #inFlight: Promise<void> | null = null;
  #reader: PackFileReader | null = null;

  constructor(bucket: R2Bucket, repositoryId: string, partBytes = PACK_PART_BYTES) {
    this.#bucket = bucket;
    this.#repositoryId = repositoryId;
    this.#partBytes = partBytes;
    this.#part = new Uint8Array(partBytes);
  }

  get #key(): string {
    return packKey(this.#repositoryId, this.packId);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let from = 0;
    while (from < bytes.length) {
      const take = Math.min(bytes.length - from, this.#partBytes - this.#filled);
      this.#part.set(bytes.subarray(from, from + take), this.#filled);
      this.#filled += take;
      this.#size += take;
      from += take;
      if (this.#filled === this.#partBytes) await this.#sendPart();
    }
  }

  /** Uploads the filled part; waits for the previous one first, so at most one is in flight. */
  async #sendPart(): Promise<void> {
    this.#upload ??= await this.#bucket.createMultipartUpload(this.#key);
    await this.#inFlight;
    const upload = this.#upload;
    const body = this.#part.subarray(0, this.#filled);
    const partNumber = this.#parts.length + 1;
    this.#inFlight = upload.uploadPart(partNumber, body).then((part) => {
      this.#parts.push(part);
    });
    // The part being uploaded keeps its buffer; the next one fills a fresh one.
    this.#part = new Uint8Array(this.#partBytes);
    this.#filled = 0;
    // Surface an upload failure at the next write rather than as an unhandled rejection.
    this.#inFlight.catch(() => {});
  }

  async finish(): Promise<number> {
    if (!this.#upload) {
      await this.#bucket.put(this.#key, this.#part.subarray(0, this.#filled));
    } else {
      if (this.#filled > 0) await this.#sendPart();
      await this.#inFlight;
      await this.#upload.complete(this.#parts.sort((a, b) => a.partNumber - b.partNumber));
    }
    this.#part = new Uint8Array(0);
    this.#reader = new PackFileReader(this.#bucket, this.#repositoryId, this.packId, this.#size);
    return this.#size;
  }

  /** Random access to the finished pack. */
  get reader(): PackFileReader {
    if (!this.#reader) throw new Error("pack upload: not finished");
    return this.#reader;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.reader.read(offset, length);
  }

  /** Removes whatever was written: an unfinished upload is aborted, finished files are deleted. */
  async discard(): Promise<void> {
    await this.#inFlight?.catch(() => {});
    if (this.#upload && !this.#reader) await this.#upload.abort().catch(() => {});
    await deletePack(this.#bucket, this.#repositoryId, this.packId);
  }
}
