/**
 * Reading a stream in large chunks where the runtime allows it. workerd hands request and R2 bodies over
 * in 4 KiB chunks, and every chunk costs a hop through each JavaScript stream above it; a byte stream read
 * with workerd's `readAtLeast` waits for 64 KiB (or the end) instead: a 28 MB pack in ~110 reads, not ~7,000.
 */

const READ_AT_LEAST = 64 * 1024;
const READ_BUFFER = 256 * 1024;

export type ChunkReader = {
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(reason?: unknown): Promise<void>;
};

/** A reader of `stream` in large chunks; a plain reader where byte streams or `readAtLeast` are missing. */
export function largeChunkReader(stream: ReadableStream<Uint8Array>): ChunkReader {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    return stream.getReader();
  }
  if (typeof byob.readAtLeast !== "function") {
    byob.releaseLock();
    return stream.getReader();
  }
  return {
    read: () => byob.readAtLeast(READ_AT_LEAST, new Uint8Array(READ_BUFFER)),
    cancel: (reason) => byob.cancel(reason),
  };
}

/** `stream` again, in large chunks (never an empty one). */
export function largeChunks(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = largeChunkReader(stream);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      do chunk = await reader.read();
      while (!chunk.done && chunk.value.length === 0);
      if (chunk.done) controller.close();
      else controller.enqueue(chunk.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
