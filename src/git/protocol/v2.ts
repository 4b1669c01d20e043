/**
 * Protocol v2 for fetching (gitprotocol-v2): the capability advertisement, command requests, `ls-refs`
 * and the `fetch` arguments and acknowledgments. Stock git asks for v2 with `Git-Protocol: version=2`;
 * without that header everything stays v0 (advertisement.ts, upload-request.ts). Pushing has no v2.
 */
import { type AdvertisedRef, agentCapability } from "./advertisement";
import { capabilityName, hasControlChar } from "./capabilities";
import { ProtocolError } from "./errors";
import { concatBytes, DELIM_PKT, encodeLine, FLUSH_PKT, PktLineReader, payloadText } from "./pkt-line";
import {
  checkDeepenCombination,
  emptyUploadRequest,
  oidArg,
  readDeepenOrFilter,
  type UploadRequest,
} from "./upload-request";

/**
 * Commands and capabilities, without `agent=` (added by `buildV2Advertisement`). `fetch=shallow filter`:
 * shallow lines, deepen, deepen-relative, deepen-since, deepen-not and filter; ref-in-want, sideband-all,
 * packfile-uris and wait-for-done are not offered, so clients do not send them.
 */
export const V2_CAPABILITIES: readonly string[] = [
  "ls-refs=unborn",
  "fetch=shallow filter",
  "server-option",
  "object-format=sha1",
];

/** Arguments of `fetch` that change the pack, read into `UploadRequest.capabilities` as v0 features. */
const FETCH_FEATURE_ARGS = new Set(["thin-pack", "no-progress", "include-tag", "ofs-delta"]);

/** True when the `Git-Protocol` header (colon-separated `key=value`) asks for version 2. */
export function wantsProtocolV2(header: string | null | undefined): boolean {
  return (header ?? "").split(":").some((entry) => entry.trim() === "version=2");
}

/** The `info/refs?service=git-upload-pack` body for a v2 client: no service line, no refs. */
export function buildV2Advertisement(version: string): Uint8Array {
  return concatBytes([
    encodeLine("version 2"),
    encodeLine(agentCapability(version)),
    ...V2_CAPABILITIES.map((cap) => encodeLine(cap)),
    FLUSH_PKT,
  ]);
}

export type V2Request = { command: null } | { command: "ls-refs" | "fetch"; capabilities: string[]; args: string[] };

function invalid(message: string): ProtocolError {
  return new ProtocolError("invalid_request", message);
}

/** Reads `command=…`, the capability lines, a delim, the arguments and the final flush. */
export async function parseV2Request(body: Uint8Array | ReadableStream<Uint8Array>): Promise<V2Request> {
  const reader = new PktLineReader(body);
  try {
    const first = await reader.read();
    if (first === null || first.type === "flush") return { command: null };
    if (first.type !== "data") throw invalid(`unexpected ${first.type} packet before the command`);
    const commandLine = payloadText(first.payload);
    if (!commandLine.startsWith("command=")) throw invalid("a v2 request starts with command=");
    const command = commandLine.slice("command=".length);
    if (command !== "ls-refs" && command !== "fetch") {
      throw new ProtocolError("unsupported", `unknown command '${command.slice(0, 32)}'`);
    }
    const advertised = new Set(["agent", "object-format", "server-option", "session-id"]);
    const capabilities: string[] = [];
    const args: string[] = [];
    let inArgs = false;
    for (;;) {
      const p = await reader.read();
      if (p === null) throw invalid("request ends before its flush");
      if (p.type === "flush") break;
      if (p.type === "delim") {
        if (inArgs) throw invalid("a second delim packet");
        inArgs = true;
        continue;
      }
      if (p.type !== "data") throw invalid(`unexpected ${p.type} packet`);
      const line = payloadText(p.payload);
      if (hasControlChar(line)) throw invalid("control character in a request line");
      if (inArgs) args.push(line);
      else {
        if (!advertised.has(capabilityName(line))) {
          throw new ProtocolError("unsupported", `unknown capability '${line.slice(0, 32)}'`);
        }
        if (line.startsWith("object-format=") && line !== "object-format=sha1") {
          throw new ProtocolError("unsupported", "only object-format=sha1 is served");
        }
        capabilities.push(line);
      }
    }
    const trailing = await reader.read();
    if (trailing !== null && trailing.type !== "flush") throw invalid("data after the end of the request");
    return { command, capabilities, args };
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
}

export type LsRefsArgs = { peel: boolean; symrefs: boolean; unborn: boolean; prefixes: string[] };

export function parseLsRefsArgs(args: readonly string[]): LsRefsArgs {
  const out: LsRefsArgs = { peel: false, symrefs: false, unborn: false, prefixes: [] };
  for (const arg of args) {
    if (arg === "peel") out.peel = true;
    else if (arg === "symrefs") out.symrefs = true;
    else if (arg === "unborn") out.unborn = true;
    else if (arg.startsWith("ref-prefix ")) out.prefixes.push(arg.slice("ref-prefix ".length));
    else throw invalid(`unexpected ls-refs argument '${arg.slice(0, 32)}'`);
  }
  return out;
}

/**
 * The `ls-refs` answer over the refs the caller may see (already filtered by the token's pattern): HEAD
 * first when its target is visible (or, asked `unborn`, when it does not exist yet), then the refs in
 * name order, each limited by the ref prefixes.
 */
export function formatLsRefs(
  visible: readonly AdvertisedRef[],
  head: { target: string | null; targetVisible: boolean },
  args: LsRefsArgs,
): Uint8Array {
  const shown = (name: string) => args.prefixes.length === 0 || args.prefixes.some((p) => name.startsWith(p));
  const lines: Uint8Array[] = [];
  if (head.target && head.targetVisible && shown("HEAD")) {
    const target = visible.find((r) => r.name === head.target);
    const symref = args.symrefs ? ` symref-target:${head.target}` : "";
    if (target) lines.push(encodeLine(`${target.oid} HEAD${symref}`));
    else if (args.unborn) lines.push(encodeLine(`unborn HEAD${symref}`));
  }
  for (const ref of visible) {
    if (!shown(ref.name)) continue;
    const peeled = args.peel && ref.peeled ? ` peeled:${ref.peeled}` : "";
    lines.push(encodeLine(`${ref.oid} ${ref.name}${peeled}`));
  }
  lines.push(FLUSH_PKT);
  return concatBytes(lines);
}

/** The `fetch` arguments as the request the upload-pack service serves (v0 and v2 share it). */
export function parseFetchArgs(args: readonly string[]): UploadRequest {
  // Every v2 request is complete: its arguments end with the flush.
  const req = { ...emptyUploadRequest(), haveListClosed: true };
  for (const arg of args) {
    const keyword = arg.split(" ", 1)[0] ?? "";
    if (keyword === "want") req.wants.push(oidArg(arg, "want"));
    else if (keyword === "have") req.haves.push(oidArg(arg, "have"));
    else if (arg === "done") req.done = true;
    else if (FETCH_FEATURE_ARGS.has(arg)) req.capabilities.push(arg);
    else if (arg === "deepen-relative") req.deepenRelative = true;
    // Everything these read is advertised (`fetch=shallow filter`).
    else if (!readDeepenOrFilter(req, arg, () => {})) {
      throw new ProtocolError("unsupported", `fetch argument '${arg.slice(0, 32)}' is not supported`);
    }
  }
  checkDeepenCombination(req);
  return req;
}

/**
 * The `acknowledgments` section of a round without `done`: `ACK` for each have we have, or `NAK` when none
 * is. Not ready, a flush ends the response and the client negotiates on; `ready`, a delimiter follows and
 * then the rest of the response with the pack.
 */
export function formatAcknowledgments(commons: readonly string[], ready = false): Uint8Array {
  const lines = [encodeLine("acknowledgments")];
  if (commons.length === 0) lines.push(encodeLine("NAK"));
  for (const oid of commons) lines.push(encodeLine(`ACK ${oid}`));
  // `ready`: the pack follows in this response, after a delimiter; otherwise the response ends here.
  if (ready) lines.push(encodeLine("ready"), DELIM_PKT);
  else lines.push(FLUSH_PKT);
  return concatBytes(lines);
}

/** The `shallow-info` section and the delim after it. */
export function formatShallowInfo(update: { shallow: readonly string[]; unshallow: readonly string[] }): Uint8Array {
  return concatBytes([
    encodeLine("shallow-info"),
    ...update.shallow.map((oid) => encodeLine(`shallow ${oid}`)),
    ...update.unshallow.map((oid) => encodeLine(`unshallow ${oid}`)),
    DELIM_PKT,
  ]);
}

/** The header of the `packfile` section; the side-banded pack and a flush follow. */
export const PACKFILE_SECTION: Uint8Array = encodeLine("packfile");
