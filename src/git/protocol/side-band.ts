import { ProtocolError } from "./errors";
import { concatBytes, FLUSH_PKT, MAX_PKT_LENGTH, type Packet, pktLengthHeader } from "./pkt-line";

export type SideBandMode = "side-band-64k" | "side-band";
export type Band = 1 | 2 | 3;

/** Data bytes per frame: the frame minus the 4-byte header and the band byte (65515 and 995). */
export const SIDE_BAND_64K_MAX_DATA = MAX_PKT_LENGTH - 5;
export const SIDE_BAND_MAX_DATA = 1000 - 5;

export function sideBandMaxData(mode: SideBandMode): number {
  return mode === "side-band-64k" ? SIDE_BAND_64K_MAX_DATA : SIDE_BAND_MAX_DATA;
}

/** The side-band mode a client asked for, preferring 64k when it asked for both. */
export function negotiatedSideBand(caps: Iterable<string>): SideBandMode | null {
  const set = new Set(caps);
  if (set.has("side-band-64k")) return "side-band-64k";
  if (set.has("side-band")) return "side-band";
  return null;
}

const encoder = new TextEncoder();

/** A frame's pkt-line length and band byte, in front of its data. */
const FRAME_HEADER = 5;

function writeFrameHeader(frame: Uint8Array, band: Band): void {
  pktLengthHeader(frame, frame.length);
  frame[4] = band;
}

function frame(band: Band, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + data.length);
  out.set(data, FRAME_HEADER);
  writeFrameHeader(out, band);
  return out;
}

/** `data` on `band`, split into as many frames as the mode needs. Empty data yields no frame. */
export function sideBandPackets(band: Band, data: Uint8Array | string, mode: SideBandMode): Uint8Array[] {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const max = sideBandMaxData(mode);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += max) out.push(frame(band, bytes.subarray(at, at + max)));
  return out;
}

/** A progress message (band 2) as git prints it on stderr; a line without CR/LF gets an LF. */
export function progressPackets(message: string, mode: SideBandMode): Uint8Array {
  const text = /[\r\n]$/.test(message) ? message : `${message}\n`;
  return concatBytes(sideBandPackets(2, text, mode));
}

/** A fatal error (band 3); the client prints it and aborts. */
export function fatalPackets(message: string, mode: SideBandMode): Uint8Array {
  const text = message.endsWith("\n") ? message : `${message}\n`;
  return concatBytes(sideBandPackets(3, text, mode));
}

export interface SideBandStreamOptions {
  /** Progress lines sent on band 2 before any data. */
  progress?: readonly string[];
  /** Append a flush-pkt after the last frame (the end of an upload-pack response). */
  endWithFlush?: boolean;
}

/**
 * Muxes a byte stream (a packfile) into band-1 frames. Small writes are coalesced into full frames so a
 * chatty pack writer costs no per-chunk overhead; the tail goes out when the input closes. Each byte is
 * copied once, straight into its frame: a clone streams every byte of the repository through here.
 */
export function sideBandStream(
  mode: SideBandMode,
  options: SideBandStreamOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const max = sideBandMaxData(mode);
  let open: Uint8Array | null = null;
  let filled = 0;
  const close = (controller: TransformStreamDefaultController<Uint8Array>) => {
    if (!open) return;
    const frame = filled === max ? open : open.subarray(0, FRAME_HEADER + filled);
    writeFrameHeader(frame, 1);
    controller.enqueue(frame);
    open = null;
    filled = 0;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      for (const line of options.progress ?? []) controller.enqueue(progressPackets(line, mode));
    },
    transform(chunk, controller) {
      for (let at = 0; at < chunk.length; ) {
        open ??= new Uint8Array(FRAME_HEADER + max);
        const take = Math.min(max - filled, chunk.length - at);
        open.set(chunk.subarray(at, at + take), FRAME_HEADER + filled);
        filled += take;
        at += take;
        if (filled === max) close(controller);
      }
    },
    flush(controller) {
      close(controller);
      if (options.endWithFlush) controller.enqueue(FLUSH_PKT);
    },
  });
}

/**
 * Band-1 frames of a byte stream, read straight into each frame behind its 5-byte header where the runtime
 * reads into a given buffer (workerd's `readAtLeast`), so no byte is copied in JavaScript; otherwise through
 * `sideBandStream`. `onData` sees each frame's data (a running checksum). Cancelling stops the read.
 */
export async function* sideBandFramesOf(
  stream: ReadableStream<Uint8Array>,
  mode: SideBandMode,
  onData?: (data: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  const max = sideBandMaxData(mode);
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {}
  if (!byob || typeof byob.readAtLeast !== "function") {
    byob?.releaseLock();
    const reader = stream.pipeThrough(sideBandStream(mode)).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        onData?.(value.subarray(FRAME_HEADER));
        yield value;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
  try {
    for (;;) {
      const { done, value } = await byob.readAtLeast(max, new Uint8Array(FRAME_HEADER + max).subarray(FRAME_HEADER));
      if (value && value.length > 0) {
        const frame = new Uint8Array(value.buffer, value.byteOffset - FRAME_HEADER, FRAME_HEADER + value.length);
        writeFrameHeader(frame, 1);
        onData?.(value);
        yield frame;
      }
      if (done) return;
    }
  } finally {
    await byob.cancel().catch(() => {});
  }
}

export interface Demuxed {
  data: Uint8Array;
  progress: string;
  errors: string[];
  /** How many frames carried band 1, and the largest one (tests check the frame limit). */
  dataFrames: number;
  largestDataFrame: number;
  flushes: number;
}

/** Splits side-band packets back into their bands (tests, and reading a client's side-banded stream). */
export function demuxSideBand(packets: readonly Packet[]): Demuxed {
  const data: Uint8Array[] = [];
  const decoder = new TextDecoder();
  let progress = "";
  const errors: string[] = [];
  let largest = 0;
  let flushes = 0;
  for (const p of packets) {
    if (p.type === "flush") {
      flushes++;
      continue;
    }
    if (p.type !== "data" || p.payload.length === 0) {
      throw new ProtocolError("malformed_pkt_line", "unexpected packet in side-band stream");
    }
    const band = p.payload[0];
    const body = p.payload.subarray(1);
    if (band === 1) {
      data.push(body);
      largest = Math.max(largest, body.length);
    } else if (band === 2) progress += decoder.decode(body);
    else if (band === 3) errors.push(decoder.decode(body));
    else throw new ProtocolError("malformed_pkt_line", `unknown side-band ${band}`);
  }
  return { data: concatBytes(data), progress, errors, dataFrames: data.length, largestDataFrame: largest, flushes };
}
