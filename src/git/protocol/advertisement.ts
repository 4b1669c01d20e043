import { ZERO_OID } from "../objects/oid";
import { concatBytes, encodeLine, FLUSH_PKT } from "./pkt-line";
import { compileRefPattern } from "./ref-pattern";
import type { GitService } from "./repo-action";

/**
 * What upload-pack advertises by default. `symref=HEAD:<target>` and `agent=` are added by
 * `buildAdvertisement` itself. Everything here has a parser behind it (upload-request.ts,
 * negotiation.ts); the pack side honours thin-pack, ofs-delta, include-tag, no-progress, the deepen
 * variants and filter (service/upload-pack.ts).
 */
export const UPLOAD_PACK_CAPABILITIES: readonly string[] = [
  "multi_ack_detailed",
  "no-done",
  "side-band-64k",
  "side-band",
  "thin-pack",
  "ofs-delta",
  "shallow",
  "deepen-since",
  "deepen-not",
  "deepen-relative",
  "no-progress",
  "include-tag",
  "allow-tip-sha1-in-want",
  "allow-reachable-sha1-in-want",
  "filter",
  "object-format=sha1",
];

/** What receive-pack advertises by default (push options would parse, but nothing uses them: not advertised). */
export const RECEIVE_PACK_CAPABILITIES: readonly string[] = [
  "report-status",
  "delete-refs",
  "side-band-64k",
  "quiet",
  "atomic",
  "ofs-delta",
  "object-format=sha1",
];

export const RECEIVE_PACK_PARSEABLE_CAPABILITIES: readonly string[] = [...RECEIVE_PACK_CAPABILITIES, "push-options"];

export function agentCapability(version: string): string {
  return `agent=agent-hub/${version}`;
}

export interface AdvertisedRef {
  /** Full ref name, e.g. `refs/heads/main`. */
  name: string;
  oid: string;
  /** For an annotated tag: the object it peels to, advertised as `<name>^{}` (upload-pack only). */
  peeled?: string;
}

export interface AdvertisementInput {
  service: GitService;
  refs: readonly AdvertisedRef[];
  /** HEAD's symbolic target (`refs/heads/main`), or null when HEAD is detached or unknown. */
  headTarget?: string | null;
  /** Capabilities without `agent=` and `symref=` (see the defaults above). */
  capabilities: readonly string[];
  /** Our version for `agent=agent-hub/<version>`. */
  version: string;
  /** The token's refPattern: refs that do not match are not advertised. */
  refPattern?: string | null;
  /**
   * Whether a visible HEAD gets its own line and `symref=`. Defaults to true for upload-pack and false for
   * receive-pack, as git does (a HEAD line in a push advertisement is noise `git push --mirror` can trip on).
   */
  includeHead?: boolean;
}

const encoder = new TextEncoder();

function compareNames(a: string, b: string): number {
  // Byte order of the UTF-8 names, as git sorts refs.
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/** The refs a caller may see (refPattern), sorted by name in byte order. */
export function visibleRefs(refs: readonly AdvertisedRef[], refPattern: string | null | undefined): AdvertisedRef[] {
  const matches = refPattern ? compileRefPattern(refPattern) : () => true;
  return refs.filter((r) => matches(r.name)).sort((a, b) => compareNames(a.name, b.name));
}

/**
 * The `info/refs?service=...` body (gitprotocol-http "Smart Clients"): the service line, a flush, the ref
 * lines with capabilities after a NUL on the first one, a flush. With no visible ref it is the
 * `capabilities^{}` record on the zero id, so a clone of an empty repository succeeds.
 */
export function buildAdvertisement(input: AdvertisementInput): Uint8Array {
  const refs = visibleRefs(input.refs, input.refPattern);
  const includeHead = input.includeHead ?? input.service === "git-upload-pack";
  const head = includeHead && input.headTarget ? refs.find((r) => r.name === input.headTarget) : undefined;
  const caps = [...input.capabilities];
  if (head) {
    // Where git puts it: before object-format (order carries no meaning, byte-equal output eases diffing).
    const at = caps.findIndex((c) => c.startsWith("object-format="));
    caps.splice(at < 0 ? caps.length : at, 0, `symref=HEAD:${head.name}`);
  }
  caps.push(agentCapability(input.version));
  const capText = caps.join(" ");

  const lines: Uint8Array[] = [encodeLine(`# service=${input.service}`), FLUSH_PKT];
  const peel = input.service === "git-upload-pack";
  let first = true;
  const push = (oid: string, name: string) => {
    lines.push(encodeLine(first ? `${oid} ${name}\0${capText}` : `${oid} ${name}`));
    first = false;
  };
  if (refs.length === 0) push(ZERO_OID, "capabilities^{}");
  if (head) push(head.oid, "HEAD");
  for (const ref of refs) {
    push(ref.oid, ref.name);
    if (peel && ref.peeled) push(ref.peeled, `${ref.name}^{}`);
  }
  lines.push(FLUSH_PKT);
  return concatBytes(lines);
}
