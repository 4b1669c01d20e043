/**
 * A pack arriving as a stream, read front to back: the indexer asks for "at least n bytes from here" and
 * then consumes what it parsed. Consumed bytes go to the running SHA-1 (the pack's trailer) and to the
 * sink (storage), and are dropped: only the entry being parsed is held. They go in runs, not entry by
 * entry: a pack of small objects would otherwise pay a hash update and a sink write per object.
 */
import { createHash } from "node:crypto";
import { concatBytes } from "../../lib/bytes";

/** Where a received pack's bytes go, in order; after `finish`, random access to all of them. */
export interface PackSink {
  write(bytes: Uint8Array): void | Promise<void>;
  /** Every byte was written (the trailer included); returns the pack's size. */
  finish(): Promise<number>;
  /** Bytes [offset, offset + length) of the finished pack. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export class PackInput {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #sink: PackSink | null;
  readonly #hash = createHash("sha1");
  #buffer: Uint8Array = new Uint8Array(0);
  #position = 0;
  /** Where the consumed bytes not yet hashed and written start, in `#buffer`. */
  #flushed = 0;
  #ended = false;
  /** Offset in the pack of the next unconsumed byte. */
  offset = 0;

  constructor(source: ReadableStream<Uint8Array>, sink: PackSink | null) {
    this.#reader = source.getReader();
    this.#sink = sink;
  }

  /** Whether the stream has ended (what `available` returns is then all there is). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * The unconsumed bytes, at least `length` of them unless the stream ends first. Chunks are gathered and
   * joined once, so an entry spread over many chunks is copied once, not once per chunk.
   */
  async available(length: number): Promise<Uint8Array> {
    const held = this.#buffer.length - this.#position;
    if (held >= length || this.#ended) return this.#buffer.subarray(this.#position);
    await this.#flush();
    const parts: Uint8Array[] = [this.#buffer.subarray(this.#position)];
    let total = held;
    while (total < length) {
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        break;
      }
      if (value.length === 0) continue;
      parts.push(value);
      total += value.length;
    }
    this.#buffer = parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(parts);
    this.#position = 0;
    this.#flushed = 0;
    return this.#buffer;
  }

  /** Hashes and hands to the sink what was consumed since the last time. */
  async #flush(): Promise<void> {
    if (this.#flushed === this.#position) return;
    const bytes = this.#buffer.subarray(this.#flushed, this.#position);
    this.#flushed = this.#position;
    this.#hash.update(bytes);
    await this.#sink?.write(bytes);
  }

  /** Moves past `length` parsed bytes; `hashed: false` for the trailer, which is not part of its own sum. */
  async consume(length: number, hashed = true): Promise<void> {
    if (!hashed) {
      await this.#flush();
      await this.#sink?.write(this.#buffer.subarray(this.#position, this.#position + length));
      this.#flushed = this.#position + length;
    }
    this.#position += length;
    this.offset += length;
  }

  /** The SHA-1 of everything consumed with `hashed`, as hex. */
  async digest(): Promise<string> {
    await this.#flush();
    return this.#hash.digest("hex");
  }

  /** Stops reading (on an error): the rest of the stream is not wanted. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
