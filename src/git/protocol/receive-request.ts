import { isOid, ZERO_OID } from "../objects/oid";
import { RECEIVE_PACK_PARSEABLE_CAPABILITIES } from "./advertisement";
import { capabilityName, hasControlChar } from "./capabilities";
import { ProtocolError } from "./errors";
import { PktLineReader, payloadText, readAllBytes } from "./pkt-line";
import { refNameProblem } from "./ref-name";

export type RefCommandKind = "create" | "update" | "delete";

export interface RefCommand {
  kind: RefCommandKind;
  /** The value the client saw (ZERO_OID for a create): the update is a compare-and-swap against it. */
  oldOid: string;
  /** The new value (ZERO_OID for a delete). */
  newOid: string;
  ref: string;
  /**
   * Why this ref name is refused (check-ref-format), or null. The request still parses so the report
   * can say `ng <ref> <reason>` for this ref alone, as git does.
   */
  refError: string | null;
}

export interface ReceiveRequest {
  commands: RefCommand[];
  /** Capabilities as the client sent them (report-status, side-band-64k, atomic, quiet, push-options, agent). */
  capabilities: string[];
  /** `shallow` lines a shallow client sends before its commands. */
  shallows: string[];
  /** Push options (`git push -o`), or null when the client did not ask for push-options. */
  pushOptions: string[] | null;
  /** True when some command creates or updates a ref: a packfile follows (none for deletes only). */
  packExpected: boolean;
}

export interface ReceiveRequestOptions {
  /** What we advertised: deletes need delete-refs, push options need push-options. */
  advertised?: readonly string[];
}

function invalid(message: string): ProtocolError {
  return new ProtocolError("invalid_request", message);
}

/**
 * Reads the command list (gitprotocol-pack "Reference Update Request") and push options from a
 * receive-pack body, leaving the reader positioned at the packfile.
 */
async function readCommands(reader: PktLineReader, options: ReceiveRequestOptions): Promise<ReceiveRequest> {
  const advertised = new Set((options.advertised ?? RECEIVE_PACK_PARSEABLE_CAPABILITIES).map(capabilityName));
  const req: ReceiveRequest = { commands: [], capabilities: [], shallows: [], pushOptions: null, packExpected: false };
  for (;;) {
    const p = await reader.read();
    if (p === null) throw invalid("request ends before the flush after the commands");
    if (p.type === "flush") break;
    if (p.type !== "data") throw invalid(`unexpected ${p.type} packet in the command list`);
    const nul = p.payload.indexOf(0);
    const line = payloadText(nul < 0 ? p.payload : p.payload.subarray(0, nul));
    if (nul >= 0) {
      // git reads features after a NUL on any line; clients put them on the first.
      for (const cap of payloadText(p.payload.subarray(nul + 1)).split(" ")) if (cap !== "") req.capabilities.push(cap);
    }
    if (line.startsWith("shallow ")) {
      if (req.commands.length > 0) throw invalid("shallow line after a command");
      const oid = line.slice("shallow ".length);
      if (!isOid(oid)) throw invalid("shallow: expected a 40-hex object id");
      req.shallows.push(oid);
      continue;
    }
    if (line.startsWith("push-cert")) throw new ProtocolError("unsupported", "push certificates are not supported");
    req.commands.push(parseCommand(line, advertised));
  }
  // An empty list is git's probe before a large push (a body of just "0000"): the caller answers 200.
  if (req.commands.length === 0) return req;

  const requested = new Set(req.capabilities.map(capabilityName));
  if (requested.has("push-options") && advertised.has("push-options")) {
    req.pushOptions = [];
    for (;;) {
      const p = await reader.read();
      if (p === null) throw invalid("request ends before the flush after the push options");
      if (p.type === "flush") break;
      if (p.type !== "data") throw invalid(`unexpected ${p.type} packet in the push options`);
      const option = payloadText(p.payload);
      if (hasControlChar(option)) throw invalid("push option contains a control character");
      req.pushOptions.push(option);
    }
  }
  req.packExpected = req.commands.some((c) => c.kind !== "delete");
  return req;
}

function parseCommand(line: string, advertised: ReadonlySet<string>): RefCommand {
  const oldOid = line.slice(0, 40);
  const newOid = line.slice(41, 81);
  const ref = line.slice(82);
  if (line[40] !== " " || line[81] !== " " || !isOid(oldOid) || !isOid(newOid)) {
    throw invalid("malformed command: expected '<old-oid> <new-oid> <ref>'");
  }
  // A name the report could not echo back on one line is a malformed request, not a refused ref.
  if (ref === "" || hasControlChar(ref, true)) throw invalid("malformed command: bad ref name");
  const kind: RefCommandKind = oldOid === ZERO_OID ? "create" : newOid === ZERO_OID ? "delete" : "update";
  if (oldOid === ZERO_OID && newOid === ZERO_OID) throw invalid("malformed command: both object ids are zero");
  if (kind === "delete" && !advertised.has("delete-refs")) {
    throw new ProtocolError("unsupported", "deleting refs is not supported by this server");
  }
  return { kind, oldOid, newOid, ref, refError: refNameProblem(ref) };
}

/**
 * Parses a receive-pack request from its body stream. `pack` is every byte after the commands (and push
 * options), unread: hand it to the pack reader when `packExpected`, cancel it otherwise.
 */
export async function parseReceiveRequest(
  body: ReadableStream<Uint8Array> | Uint8Array,
  options: ReceiveRequestOptions = {},
): Promise<ReceiveRequest & { pack: ReadableStream<Uint8Array> }> {
  const reader = new PktLineReader(body);
  try {
    const req = await readCommands(reader, options);
    return { ...req, pack: reader.remainder() };
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
}

/** The same over a whole body, with the pack bytes read (tests and small pushes). */
export async function parseReceiveRequestBytes(
  body: Uint8Array,
  options: ReceiveRequestOptions = {},
): Promise<ReceiveRequest & { pack: Uint8Array }> {
  const req = await parseReceiveRequest(body, options);
  return { ...req, pack: await readAllBytes(req.pack) };
}
