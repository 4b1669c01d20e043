import { concatBytes } from "../../lib/bytes";
import { ProtocolError } from "./errors";

/** A frame is at most 0xfff0 bytes including its 4-byte header (gitprotocol-common). */
export const MAX_PKT_LENGTH = 65520;
export const MAX_PKT_PAYLOAD = MAX_PKT_LENGTH - 4;

export type Packet =
  | { type: "data"; payload: Uint8Array }
  | { type: "flush" }
  | { type: "delim" }
  | { type: "response-end" };

const encoder = new TextEncoder();
const HEX = "0123456789abcdef";

export const FLUSH_PKT: Uint8Array = encoder.encode("0000");
export const DELIM_PKT: Uint8Array = encoder.encode("0001");
export const RESPONSE_END_PKT: Uint8Array = encoder.encode("0002");

function malformed(message: string): ProtocolError {
  return new ProtocolError("malformed_pkt_line", message);
}

/** One data pkt-line; a string payload is UTF-8 encoded. Throws past the maximum payload. */
export function encodePkt(payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === "string" ? encoder.encode(payload) : payload;
  if (body.length > MAX_PKT_PAYLOAD) throw malformed("oversize pkt-line payload");
  const out = new Uint8Array(body.length + 4);
  out.set(body, 4);
  pktLengthHeader(out, out.length);
  return out;
}

/** Writes a packet's 4-hex-digit length (header included) into its first 4 bytes. */
export function pktLengthHeader(packet: Uint8Array, length: number): void {
  if (length > MAX_PKT_LENGTH) throw malformed("oversize pkt-line payload");
  packet[0] = HEX.charCodeAt((length >> 12) & 15);
  packet[1] = HEX.charCodeAt((length >> 8) & 15);
  packet[2] = HEX.charCodeAt((length >> 4) & 15);
  packet[3] = HEX.charCodeAt(length & 15);
}

/** A text line as git writes it: the payload ends with LF. */
export function encodeLine(line: string): Uint8Array {
  return encodePkt(line.endsWith("\n") ? line : `${line}\n`);
}

/** `ERR <message>\n`, which git clients print and abort on. */
export function encodeErr(message: string): Uint8Array {
  return encodePkt(`ERR ${message}\n`);
}

export { concatBytes } from "../../lib/bytes";

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses a 4-byte header (hex, either case) into a length; special lengths 0..2 are returned as-is. */
function parseLength(h: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const v = hexValue(h[i] ?? 0);
    if (v < 0) throw malformed("malformed pkt-line length");
    n = (n << 4) | v;
  }
  if (n === 3) throw malformed("reserved pkt-line length");
  if (n > MAX_PKT_LENGTH) throw malformed("oversize pkt-line");
  return n;
}

function special(n: number): Packet | null {
  if (n === 0) return { type: "flush" };
  if (n === 1) return { type: "delim" };
  if (n === 2) return { type: "response-end" };
  return null;
}

/** Decodes a whole buffer into packets; a partial frame at the end throws "truncated pkt-line". */
export function decodePkts(bytes: Uint8Array): Packet[] {
  const out: Packet[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 4) throw malformed("truncated pkt-line");
    const n = parseLength(bytes.subarray(at, at + 4));
    const s = special(n);
    if (s) {
      out.push(s);
      at += 4;
      continue;
    }
    if (at + n > bytes.length) throw malformed("truncated pkt-line");
    out.push({ type: "data", payload: bytes.slice(at + 4, at + n) });
    at += n;
  }
  return out;
}

/** Bytes received but not consumed yet, as a list of chunks so one-byte chunks cost no quadratic copying. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private index = 0; // first chunk still holding bytes
  private head = 0; // offset into chunks[index]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const first = this.chunks[this.index] as Uint8Array;
      const step = Math.min(first.length - this.head, n - filled);
      out.set(first.subarray(this.head, this.head + step), filled);
      filled += step;
      this.head += step;
      if (this.head === first.length) {
        this.index++;
        this.head = 0;
      }
    }
    this.length -= n;
    // Drop consumed chunks in bulk, not one shift() per chunk.
    if (this.index > 64 && this.index * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.index);
      this.index = 0;
    }
    return out;
  }

  drain(): Uint8Array[] {
    const rest = this.chunks.slice(this.index).map((c, i) => (i === 0 ? c.subarray(this.head) : c));
    this.chunks = [];
    this.index = 0;
    this.head = 0;
    this.length = 0;
    return rest;
  }
}

function singleChunkStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/**
 * Incremental pkt-line reader over a byte stream whose chunks may split frames anywhere. `read()` returns
 * the next packet, or null at end of stream on a frame boundary. After the caller has read what it wants
 * (receive-pack: the commands up to their flush), `remainder()` hands back every byte not consumed yet as a
 * stream (the packfile).
 */
export class PktLineReader {
  private readonly queue = new ByteQueue();
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private ended = false;
  private detached = false;

  constructor(source: ReadableStream<Uint8Array> | Uint8Array) {
    const stream = source instanceof Uint8Array ? singleChunkStream(source) : source;
    this.reader = stream.getReader();
  }

  /** Pulls chunks until `n` bytes are buffered; false when the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.queue.length < n) {
      if (this.ended) return false;
      const { done, value } = await this.reader.read();
      if (done) {
        this.ended = true;
        return this.queue.length >= n;
      }
      if (!(value instanceof Uint8Array)) throw new ProtocolError("invalid_request", "request body is not bytes");
      this.queue.push(value);
    }
    return true;
  }

  async read(): Promise<Packet | null> {
    if (this.detached) throw new Error("PktLineReader: read after remainder()");
    if (!(await this.fill(4))) {
      if (this.queue.length === 0) return null;
      throw malformed("truncated pkt-line");
    }
    const n = parseLength(this.queue.take(4));
    const s = special(n);
    if (s) return s;
    if (!(await this.fill(n - 4))) throw malformed("truncated pkt-line");
    return { type: "data", payload: this.queue.take(n - 4) };
  }

  /** Everything after the packets read so far, as a stream. The reader cannot be used afterwards. */
  remainder(): ReadableStream<Uint8Array> {
    this.detached = true;
    const buffered = this.queue.drain();
    const reader = this.reader;
    const ended = this.ended;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = buffered.shift();
        if (next) {
          controller.enqueue(next);
          return;
        }
        if (ended) {
          controller.close();
          return;
        }
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
  }

  /** Stops reading the source (e.g. the body of a rejected request). */
  async cancel(reason?: unknown): Promise<void> {
    await this.reader.cancel(reason);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The payload as UTF-8 text without its trailing LF (git ends lines with LF; it is optional on input). */
export function payloadText(payload: Uint8Array): string {
  let end = payload.length;
  if (end > 0 && payload[end - 1] === 10) end--;
  try {
    return utf8.decode(payload.subarray(0, end));
  } catch {
    throw new ProtocolError("invalid_request", "pkt-line is not valid UTF-8");
  }
}

export async function readAllBytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return concatBytes(parts);
}
