import { largeChunkReader } from "../../lib/large-chunks";
import { ProtocolError } from "./errors";

/** The default cap on a decoded request body: far above any upload-pack negotiation. */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;

/**
 * The request body as git meant it: gunzipped when `Content-Encoding: gzip` (git gzips large upload-pack
 * requests), passed through when there is no encoding. Reading more than `maxBytes` decoded bytes, a
 * corrupt gzip stream or an unknown encoding make the stream fail with ProtocolError when read (never a
 * synchronous throw), so a gzip bomb is stopped early.
 */
export function decodeRequestBody(
  body: ReadableStream<Uint8Array> | null,
  contentEncoding: string | null | undefined,
  maxBytes: number = DEFAULT_MAX_REQUEST_BYTES,
): ReadableStream<Uint8Array> {
  const encoding = (contentEncoding ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity" && encoding !== "gzip" && encoding !== "x-gzip") {
    // Fails on first read rather than here, so callers handle it where they handle every body error.
    void body?.cancel().catch(() => {});
    return new ReadableStream<Uint8Array>({
      pull() {
        throw new ProtocolError("bad_encoding", "unsupported Content-Encoding");
      },
    });
  }
  const source = body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  const gzipped = encoding === "gzip" || encoding === "x-gzip";
  const decoded = gzipped ? source.pipeThrough(new DecompressionStream("gzip")) : source;
  return capped(decoded, maxBytes, gzipped);
}

function capped(stream: ReadableStream<Uint8Array>, maxBytes: number, gzipped: boolean): ReadableStream<Uint8Array> {
  const reader = largeChunkReader(stream);
  let total = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        do chunk = await reader.read();
        while (!chunk.done && chunk.value.length === 0);
      } catch (err) {
        if (err instanceof ProtocolError) throw err;
        // DecompressionStream reports corrupt or truncated input as a TypeError.
        throw gzipped
          ? new ProtocolError("bad_encoding", "request body is not valid gzip")
          : new ProtocolError("invalid_request", "request body could not be read");
      }
      if (chunk.done) {
        controller.close();
        return;
      }
      total += chunk.value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new ProtocolError("body_too_large", `request body exceeds ${maxBytes} bytes`);
      }
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
