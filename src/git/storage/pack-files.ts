/**
 * Pack and index files in R2. Both are immutable once written, which is what makes caching them in the
 * isolate safe: a key never changes content.
 *
 * Random access (object lookup while walking commits and trees) reads fixed-size blocks through a small
 * LRU shared by the isolate, so walking a repository costs a few range requests rather than one per
 * object, and memory stays bounded whatever the repository size.
 */
import { ByteBoundedMap } from "../../lib/bounded-map";

const BLOCK_BYTES = 256 * 1024;
const CACHE_BYTES = 16 * 1024 * 1024;

export function packKey(repositoryId: string, packId: string): string {
  return `git/${repositoryId}/pack-${packId}.pack`;
}

export function indexKey(repositoryId: string, packId: string): string {
  return `git/${repositoryId}/pack-${packId}.idx`;
}

/** Writes the index after the pack: an index is only ever visible next to a complete pack. */
export async function putPackFiles(
  bucket: R2Bucket,
  repositoryId: string,
  packId: string,
  pack: Uint8Array,
  index: Uint8Array,
): Promise<void> {
  await bucket.put(packKey(repositoryId, packId), pack);
  await putIndexFile(bucket, repositoryId, packId, index);
}

/** Writes a pack's index; its pack must already be complete. */
export async function putIndexFile(
  bucket: R2Bucket,
  repositoryId: string,
  packId: string,
  index: Uint8Array,
): Promise<void> {
  await bucket.put(indexKey(repositoryId, packId), index);
}

/** The ids of the packs that have a file (pack or index) in R2. */
export async function storedPackIds(bucket: R2Bucket, repositoryId: string): Promise<Set<string>> {
  const found = new Set<string>();
  let cursor: string | undefined;
  do {
    const listed = await bucket.list({ prefix: `git/${repositoryId}/pack-`, cursor });
    for (const object of listed.objects) {
      const id = /\/pack-([0-9a-f]{40})\.(?:pack|idx)$/.exec(object.key)?.[1];
      if (id) found.add(id);
    }
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  return found;
}

/** Deletes one pack's files (the index first: an index is never visible without its pack). */
export async function deletePack(bucket: R2Bucket, repositoryId: string, packId: string): Promise<void> {
  await bucket.delete(indexKey(repositoryId, packId));
  await bucket.delete(packKey(repositoryId, packId));
}

export async function deletePackFiles(bucket: R2Bucket, repositoryId: string): Promise<void> {
  let cursor: string | undefined;
  do {
    const listed = await bucket.list({ prefix: `git/${repositoryId}/`, cursor });
    if (listed.objects.length > 0) await bucket.delete(listed.objects.map((o) => o.key));
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
}

/** A whole pack as a stream (clone fast path), or null when the object is gone. */
export async function streamPack(bucket: R2Bucket, repositoryId: string, packId: string) {
  const object = await bucket.get(packKey(repositoryId, packId));
  return object ? { body: object.body, size: object.size } : null;
}

const blocks = new ByteBoundedMap<string, Uint8Array>(CACHE_BYTES, (block) => block.byteLength);

/**
 * Index files kept by the isolate, bounded by bytes and not by count: an index takes 28 bytes per object, so a
 * few large repositories would otherwise fill an isolate's memory. The object store keeps each cached index's
 * sorted offsets beside it (dropped with it), so they count here too. An index larger than the
 * whole budget is read for each request that opens its repository.
 */
const INDEX_CACHE_BYTES = 24 * 1024 * 1024;
// 28 bytes per object in the file, 8 more for its offset beside it: 9/7 of the file's length.
const indexes = new ByteBoundedMap<string, Uint8Array>(INDEX_CACHE_BYTES, (bytes) => (bytes.byteLength * 9) / 7);
/** Reads in flight, so that concurrent requests for one index share one R2 read. */
const loadingIndexes = new Map<string, Promise<Uint8Array>>();

/** Reads a whole index file, once per isolate while it stays in the cache. */
export function readIndexFile(bucket: R2Bucket, repositoryId: string, packId: string): Promise<Uint8Array> {
  const key = indexKey(repositoryId, packId);
  const cached = indexes.get(key);
  if (cached) return Promise.resolve(cached);
  let pending = loadingIndexes.get(key);
  if (!pending) {
    pending = (async () => {
      try {
        const object = await bucket.get(key);
        if (!object) throw new Error(`git storage: missing index ${key}`);
        const bytes = new Uint8Array(await object.arrayBuffer());
        indexes.set(key, bytes);
        return bytes;
      } finally {
        loadingIndexes.delete(key);
      }
    })();
    loadingIndexes.set(key, pending);
  }
  return pending;
}

/** Random access to one stored pack through the block cache. */
export class PackFileReader {
  readonly #bucket: R2Bucket;
  readonly #key: string;
  readonly size: number;

  constructor(bucket: R2Bucket, repositoryId: string, packId: string, size: number) {
    this.#bucket = bucket;
    this.#key = packKey(repositoryId, packId);
    this.size = size;
  }

  async #block(index: number): Promise<Uint8Array> {
    const cacheKey = `${this.#key}#${index}`;
    const cached = blocks.get(cacheKey);
    if (cached) return cached;
    const offset = index * BLOCK_BYTES;
    const length = Math.min(BLOCK_BYTES, this.size - offset);
    const object = await this.#bucket.get(this.#key, { range: { offset, length } });
    if (!object) throw new Error(`git storage: missing pack ${this.#key}`);
    const block = new Uint8Array(await object.arrayBuffer());
    blocks.set(cacheKey, block);
    return block;
  }

  /** Bytes [offset, offset+length), clipped to the end of the pack. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.size);
    if (offset >= end) return new Uint8Array(0);
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((end - 1) / BLOCK_BYTES);
    if (first === last) {
      const block = await this.#block(first);
      return block.subarray(offset - first * BLOCK_BYTES, end - first * BLOCK_BYTES);
    }
    const out = new Uint8Array(end - offset);
    let written = 0;
    for (let i = first; i <= last; i++) {
      const block = await this.#block(i);
      const from = i === first ? offset - first * BLOCK_BYTES : 0;
      const to = i === last ? end - last * BLOCK_BYTES : block.byteLength;
      out.set(block.subarray(from, to), written);
      written += to - from;
    }
    return out;
  }
}
