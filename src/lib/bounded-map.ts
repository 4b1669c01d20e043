/**
 * A Map that keeps at most `max` entries: setting a key makes it the newest, and past `max` the oldest
 * one goes. For the per-isolate memos that must not grow with traffic.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) super.delete(oldest.value);
    }
    return this;
  }
}

/**
 * A least-recently-used map bounded by the total size of its values (`sizeOf`, in bytes), for the caches of
 * bytes an isolate keeps across requests. Reading a key makes it the newest; past `maxBytes` the oldest
 * entries go. A value larger than `maxValueBytes` (by default the whole budget) is not kept, and drops what the
 * key held: one large value would push out the many small ones. Values must not change size while they are in
 * the map.
 */
export class ByteBoundedMap<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #maxBytes: number;
  readonly #maxValueBytes: number;
  readonly #sizeOf: (value: V) => number;
  #bytes = 0;

  constructor(maxBytes: number, sizeOf: (value: V) => number, maxValueBytes = maxBytes) {
    this.#maxBytes = maxBytes;
    this.#sizeOf = sizeOf;
    this.#maxValueBytes = Math.min(maxValueBytes, maxBytes);
  }

  /** Total size of the values held. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    const size = this.#sizeOf(value);
    if (size > this.#maxValueBytes) return;
    this.#entries.set(key, value);
    this.#bytes += size;
    if (this.#bytes <= this.#maxBytes) return;
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= this.#sizeOf(old);
    }
  }

  delete(key: K): boolean {
    const old = this.#entries.get(key);
    if (old === undefined) return false;
    this.#entries.delete(key);
    this.#bytes -= this.#sizeOf(old);
    return true;
  }
}
