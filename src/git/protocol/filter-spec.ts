import { ProtocolError } from "./errors";

/**
 * The partial-clone filters upload-pack serves (`filter <spec>`, the specs of `git rev-list --filter`):
 * - `blob:none`: no blobs;
 * - `blob:limit=<n>`: no blobs of `n` bytes or more (`k`, `m`, `g` suffixes as git reads them);
 * - `tree:<depth>`: no trees or blobs `depth` or more levels below a commit's root tree (`tree:0`: commits
 *   and tags only).
 * Objects the client names in its wants are sent whatever the filter says: that is how a partial clone
 * fetches what it lacks.
 */
export type ObjectFilter =
  | { kind: "blob:none" }
  | { kind: "blob:limit"; bytes: number }
  | { kind: "tree"; depth: number };

const SCALE: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function unsupported(spec: string): ProtocolError {
  const shown = spec.length > 64 ? `${spec.slice(0, 64)}…` : spec;
  return new ProtocolError(
    "unsupported",
    `filter '${shown}' is not supported; use blob:none, blob:limit=<n> or tree:<depth>`,
  );
}

/** Reads a filter spec; anything else (sparse:, object:type=, combine:, malformed numbers) is refused. */
export function parseFilterSpec(spec: string): ObjectFilter {
  if (spec === "blob:none") return { kind: "blob:none" };
  const limit = /^blob:limit=([0-9]{1,15})([kmg]?)$/i.exec(spec);
  if (limit) {
    const bytes = Number(limit[1]) * (SCALE[(limit[2] as string).toLowerCase()] as number);
    if (Number.isSafeInteger(bytes)) return { kind: "blob:limit", bytes };
  }
  const tree = /^tree:([0-9]{1,9})$/.exec(spec);
  if (tree) return { kind: "tree", depth: Number(tree[1]) };
  throw unsupported(spec);
}
