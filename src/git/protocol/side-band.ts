import { ProtocolError } from "./errors";
import { concatBytes, encodePkt, FLUSH_PKT, MAX_PKT_LENGTH, type Packet } from "./pkt-line";

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

function frame(band: Band, data: Uint8Array): Uint8Array {
  const payload = new Uint8Array(data.length + 1);
  payload[0] = band;
  payload.set(data, 1);
  return encodePkt(payload);
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
 * chatty pack writer costs no per-chunk overhead; the tail goes out when the input closes.
 */
export function sideBandStream(
  mode: SideBandMode,
  options: SideBandStreamOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const max = sideBandMaxData(mode);
  let pending: Uint8Array[] = [];
  let pendingLength = 0;
  const emitFull = (controller: TransformStreamDefaultController<Uint8Array>) => {
    if (pendingLength < max) return;
    const all = concatBytes(pending);
    let at = 0;
    for (; all.length - at >= max; at += max) controller.enqueue(frame(1, all.subarray(at, at + max)));
    pending = at < all.length ? [all.slice(at)] : [];
    pendingLength = all.length - at;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      for (const line of options.progress ?? []) controller.enqueue(progressPackets(line, mode));
    },
    transform(chunk, controller) {
      if (chunk.length === 0) return;
      pending.push(chunk);
      pendingLength += chunk.length;
      emitFull(controller);
    },
    flush(controller) {
      if (pendingLength > 0) controller.enqueue(frame(1, concatBytes(pending)));
      pending = [];
      pendingLength = 0;
      if (options.endWithFlush) controller.enqueue(FLUSH_PKT);
    },
  });
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
