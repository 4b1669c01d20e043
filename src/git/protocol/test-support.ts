/** Helpers for this folder's tests: byte streams chunked the way a network delivers them, fuzz mutations. */
import fc from "fast-check";
import { encodePkt } from "./pkt-line";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** A stream delivering `data` split at the given sizes (the last chunk takes the rest). */
export function chunkedStream(data: Uint8Array, sizes: readonly number[] = []): ReadableStream<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= data.length) break;
    chunks.push(data.slice(at, at + Math.max(1, size)));
    at += Math.max(1, size);
  }
  if (at < data.length) chunks.push(data.slice(at));
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

/** One byte per chunk. */
export function byteStream(data: Uint8Array): ReadableStream<Uint8Array> {
  return chunkedStream(
    data,
    Array.from({ length: data.length }, () => 1),
  );
}

/** A pkt-line as a string, for building request bodies readably. */
export function pkt(line: string): string {
  return (bytes(line).length + 4).toString(16).padStart(4, "0") + line;
}

export const oidA = "a".repeat(40);
export const oidB = "b".repeat(40);
export const oidC = "c".repeat(40);
export const oidD = "d".repeat(40);

/**
 * fast-check parameters with the seed printed up front, so any run (not only a failing one, which
 * fast-check reports itself) can be replayed with `{ seed }`.
 */
export function fuzzParams(name: string, numRuns: number): { seed: number; numRuns: number; verbose: 1 } {
  const seed = (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  console.log(`[fuzz] ${name}: seed=${seed} numRuns=${numRuns}`);
  return { seed, numRuns, verbose: 1 };
}

export type Mutation =
  | { kind: "none" }
  | { kind: "truncate"; at: number }
  | { kind: "flip"; at: number; value: number }
  | { kind: "insert"; at: number; junk: Uint8Array };

/** Applies a mutation to a wire body; positions wrap around its length. */
export function mutate(wire: Uint8Array, m: Mutation): Uint8Array {
  if (m.kind === "none" || wire.length === 0) return wire;
  const at = m.at % (wire.length + 1);
  if (m.kind === "truncate") return wire.subarray(0, at);
  if (m.kind === "flip") {
    const out = wire.slice();
    out[at % wire.length] = m.value;
    return out;
  }
  const out = new Uint8Array(wire.length + m.junk.length);
  out.set(wire.subarray(0, at));
  out.set(m.junk, at);
  out.set(wire.subarray(at), at + m.junk.length);
  return out;
}

/**
 * Mutations for fuzzing a wire body: none (weighted double), a truncation, a flipped byte, or inserted junk
 * (random bytes, a special packet, an invalid length, or a pkt-line of up to `maxJunkLine` characters).
 */
export function mutationArbitrary(maxJunkLine = 30): fc.Arbitrary<Mutation> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant<Mutation>({ kind: "none" }) },
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      junk: fc.oneof(
        fc.uint8Array({ maxLength: 8 }),
        fc.constantFrom(bytes("0000"), bytes("0001"), bytes("0002"), bytes("0003"), bytes("fff1")),
        fc.string({ maxLength: maxJunkLine }).map((l) => encodePkt(l)),
      ),
    }),
  );
}
