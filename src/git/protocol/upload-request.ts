import { isOid } from "../objects/oid";
import { UPLOAD_PACK_CAPABILITIES } from "./advertisement";
import { capabilityName, hasControlChar } from "./capabilities";
import { ProtocolError } from "./errors";
import { type Packet, PktLineReader, payloadText } from "./pkt-line";

/**
 * One stateless (v0/v1 smart-HTTP) upload-pack request, gitprotocol-pack "Packfile Negotiation":
 * wants (capabilities on the first), shallows, a depth request, an optional filter, a flush, then the
 * haves of this round ending with `done` or a flush.
 */
export interface UploadRequest {
  wants: string[];
  /** Capabilities exactly as the client sent them (intersect with the advertised ones to use them). */
  capabilities: string[];
  /** Commits the client only has shallow copies of. */
  shallows: string[];
  /** `deepen <n>`: a positive commit depth (2147483647 means "unshallow"), or null. */
  depth: number | null;
  /** The client asked `deepen-relative`: depth counts from its current shallow boundary. */
  deepenRelative: boolean;
  /** `deepen-since <seconds since epoch>`, or null. */
  deepenSince: number | null;
  /** `deepen-not <ref>` lines (refs or short names, resolved by the caller). */
  deepenNot: string[];
  /** `filter <spec>`, only accepted when `filter` was advertised and requested. */
  filter: string | null;
  haves: string[];
  /** The client sent `done`: the pack must follow in this response. */
  done: boolean;
  /**
   * The have list was closed by `done` or a flush. False when the body ends right after the want list:
   * the first request of a shallow fetch, which only asks for the shallow section.
   */
  haveListClosed: boolean;
}

export interface UploadRequestOptions {
  /** What we advertised; features the client uses beyond it are refused. */
  advertised?: readonly string[];
}

/** A request with nothing in it yet, for the parsers to fill. */
export function emptyUploadRequest(): UploadRequest {
  return {
    wants: [],
    capabilities: [],
    shallows: [],
    depth: null,
    deepenRelative: false,
    deepenSince: null,
    deepenNot: [],
    filter: null,
    haves: [],
    done: false,
    haveListClosed: false,
  };
}

/** True when the response must start with the shallow/unshallow section (`formatShallowUpdate`). */
export function wantsShallowUpdate(req: UploadRequest): boolean {
  return req.depth !== null || req.deepenSince !== null || req.deepenNot.length > 0;
}

function invalid(message: string): ProtocolError {
  return new ProtocolError("invalid_request", message);
}

/** `<keyword> <oid>` → the oid, or a ProtocolError. */
export function oidArg(line: string, keyword: string): string {
  const oid = line.slice(keyword.length + 1);
  if (!isOid(oid)) throw invalid(`${keyword}: expected a 40-hex object id`);
  return oid;
}

function positiveInteger(text: string, what: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw invalid(`invalid ${what}`);
  const n = Number(text);
  if (n <= 0) throw invalid(`invalid ${what}`);
  return n;
}

/**
 * Reads a `shallow`, `deepen`, `deepen-since`, `deepen-not` or `filter` line into `req`: the same lines in
 * a v0 want list and among v2 `fetch` arguments. False for any other line. `requires(capability, feature)`
 * throws when the capability behind a feature was not advertised.
 */
export function readDeepenOrFilter(
  req: UploadRequest,
  line: string,
  requires: (capability: string, feature: string) => void,
): boolean {
  const keyword = line.split(" ", 1)[0];
  if (keyword === "shallow") {
    requires("shallow", "shallow");
    req.shallows.push(oidArg(line, "shallow"));
  } else if (keyword === "deepen") {
    requires("shallow", "deepen");
    req.depth = positiveInteger(line.slice("deepen ".length), "deepen");
  } else if (keyword === "deepen-since") {
    requires("deepen-since", "deepen-since");
    req.deepenSince = positiveInteger(line.slice("deepen-since ".length), "deepen-since");
  } else if (keyword === "deepen-not") {
    requires("deepen-not", "deepen-not");
    const ref = line.slice("deepen-not ".length);
    if (ref === "" || !line.startsWith("deepen-not ") || hasControlChar(ref, true)) {
      throw invalid("invalid deepen-not");
    }
    req.deepenNot.push(ref);
  } else if (keyword === "filter") {
    requires("filter", "filter");
    const spec = line.slice("filter ".length);
    if (spec === "" || !line.startsWith("filter ") || hasControlChar(spec)) throw invalid("invalid filter");
    req.filter = spec;
  } else return false;
  return true;
}

/** A depth and a cut by date or ref exclude each other (git refuses the pair too). */
export function checkDeepenCombination(req: UploadRequest): void {
  if (req.depth !== null && (req.deepenSince !== null || req.deepenNot.length > 0)) {
    throw invalid("deepen and deepen-since (or deepen-not) cannot be used together");
  }
}

function expectData(p: Packet | null, where: string): Packet | null {
  if (p && (p.type === "delim" || p.type === "response-end")) throw invalid(`unexpected ${p.type} packet ${where}`);
  return p;
}

/**
 * Parses the request from the whole body or its stream. Throws ProtocolError on anything git would die on;
 * an empty want list is returned as such (the route answers `ERR upload-pack: no want lines`).
 */
export async function parseUploadRequest(
  body: Uint8Array | ReadableStream<Uint8Array>,
  options: UploadRequestOptions = {},
): Promise<UploadRequest> {
  const reader = new PktLineReader(body);
  try {
    return await readUploadRequest(reader, options);
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
}

async function readUploadRequest(reader: PktLineReader, options: UploadRequestOptions): Promise<UploadRequest> {
  const advertised = new Set((options.advertised ?? UPLOAD_PACK_CAPABILITIES).map(capabilityName));
  const req = emptyUploadRequest();
  const requires = (cap: string, feature: string) => {
    if (!advertised.has(cap)) throw new ProtocolError("unsupported", `${feature} is not supported by this server`);
  };

  // Section 1: wants and shallow/deepen/filter, up to a flush.
  for (;;) {
    const p = expectData(await reader.read(), "in the want list");
    if (p === null) {
      if (req.wants.length === 0 && req.shallows.length === 0) return req; // an empty body
      throw invalid("request ends before the flush after the want list");
    }
    if (p.type === "flush") break;
    if (p.type !== "data") continue;
    const line = payloadText(p.payload);
    const keyword = line.split(" ", 1)[0];
    if (keyword === "want") {
      const parts = line.split(" ");
      const oid = parts[1] ?? "";
      if (!isOid(oid)) throw invalid("want: expected a 40-hex object id");
      req.wants.push(oid);
      // git reads features from any want line; clients send them on the first only.
      for (const cap of parts.slice(2)) if (cap !== "") req.capabilities.push(cap);
    } else if (!readDeepenOrFilter(req, line, requires)) {
      throw invalid(`unexpected line in the want list: ${describe(keyword)}`);
    }
  }

  const requested = new Set(req.capabilities.map(capabilityName));
  if (req.filter !== null && !requested.has("filter")) throw invalid("filtering capability not negotiated");
  checkDeepenCombination(req);
  req.deepenRelative = requested.has("deepen-relative") && advertised.has("deepen-relative");

  // Section 2: this round's haves, ending with `done` or a flush.
  for (;;) {
    const p = expectData(await reader.read(), "in the have list");
    if (p === null) break;
    if (p.type === "flush") {
      req.haveListClosed = true;
      break;
    }
    if (p.type !== "data") continue;
    const line = payloadText(p.payload);
    if (line === "done") {
      req.done = true;
      req.haveListClosed = true;
      break;
    }
    if (!line.startsWith("have ")) throw invalid(`expected have or done, got ${describe(line.split(" ", 1)[0])}`);
    req.haves.push(oidArg(line, "have"));
  }

  // A stateless request is one round: nothing but flushes may follow its end.
  for (;;) {
    const p = await reader.read();
    if (p === null) break;
    if (p.type !== "flush") throw invalid("unexpected data after the end of the request");
  }
  return req;
}

/** A short, printable rendering of a client's token for error messages. */
function describe(token: string | undefined): string {
  const t = (token ?? "").slice(0, 32);
  return /^[\x21-\x7e]*$/.test(t) && t !== "" ? `'${t}'` : "an unreadable line";
}
