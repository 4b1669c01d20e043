import { concatBytes, encodeLine, FLUSH_PKT } from "./pkt-line";

/**
 * The server half of one stateless negotiation round (gitprotocol-pack "Packfile Negotiation", as
 * upload-pack does it with --stateless-rpc). Over HTTP every request carries the client's whole state, so
 * the round is a pure function of the request and the repository.
 */
export type AckMode = "multi_ack_detailed" | "multi_ack" | "single";

export function ackModeOf(caps: ReadonlySet<string>): AckMode {
  if (caps.has("multi_ack_detailed")) return "multi_ack_detailed";
  if (caps.has("multi_ack")) return "multi_ack";
  return "single";
}

export interface NegotiationInput {
  haves: readonly string[];
  done: boolean;
  /**
   * False when the request ended without `done` or a flush after the wants (`UploadRequest.haveListClosed`):
   * git answers such a request (a shallow fetch's first one) with the shallow section alone, no NAK.
   * Defaults to true.
   */
  haveListClosed?: boolean;
  /** The negotiated capabilities (requested ∩ advertised), e.g. from `negotiatedCapabilities`. */
  capabilities: ReadonlySet<string>;
  /** The object exists in the repository (and the caller may see it). */
  isCommon?(oid: string): Promise<boolean>;
  /**
   * Batch form of `isCommon`, preferred when given: the subset of `oids` the repository has, in one
   * storage round trip instead of one per have.
   */
  whichExist?(oids: readonly string[]): Promise<ReadonlySet<string>>;
  /**
   * Whether the commons found so far close the pack (every want reaches one of them), so the server can
   * stop negotiating. Omitted: never ready, the client negotiates until it sends `done`.
   */
  isReady?(commons: readonly string[]): Promise<boolean>;
}

export interface NegotiationResult {
  /** The ACK/NAK lines in order, without pkt framing (for logs and tests). */
  lines: string[];
  /** The same lines as pkt-lines: write them first (after the shallow section, if any). */
  bytes: Uint8Array;
  /** True when the pack must follow in this response; false ends the response after `bytes`. */
  sendPack: boolean;
  /** The haves the repository has, in request order without repeats: the pack excludes what they reach. */
  commons: string[];
}

export async function negotiate(input: NegotiationInput): Promise<NegotiationResult> {
  const mode = ackModeOf(input.capabilities);
  const multiAck = mode !== "single";
  const noDone = mode === "multi_ack_detailed" && input.capabilities.has("no-done");
  const lines: string[] = [];
  const commons: string[] = [];
  const seen = new Set<string>();
  let lastCommon: string | null = null;
  let gotCommon = false;
  let gotOther = false;
  let sentReady = false;

  // Readiness only changes when a common is added; ask the (expensive) policy once per common set.
  let readyFor = -1;
  let readyValue = false;
  const ready = async (): Promise<boolean> => {
    if (commons.length === 0 || !input.isReady) return false;
    if (readyFor !== commons.length) {
      readyValue = await input.isReady(commons);
      readyFor = commons.length;
    }
    return readyValue;
  };

  let isCommon: (oid: string) => Promise<boolean> | boolean;
  if (input.whichExist) {
    const existing = input.haves.length > 0 ? await input.whichExist([...new Set(input.haves)]) : new Set<string>();
    isCommon = (oid) => existing.has(oid);
  } else if (input.isCommon) isCommon = input.isCommon;
  else throw new Error("negotiate: pass isCommon or whichExist");

  for (const oid of input.haves) {
    if (!(await isCommon(oid))) {
      // They have what we do not: once ready, tell the client it can stop sending haves.
      gotOther = true;
      if (multiAck && (await ready())) {
        if (mode === "multi_ack_detailed") {
          sentReady = true;
          lines.push(`ACK ${oid} ready`);
        } else lines.push(`ACK ${oid} continue`);
      }
      continue;
    }
    gotCommon = true;
    lastCommon = oid;
    if (!seen.has(oid)) {
      seen.add(oid);
      commons.push(oid);
      if (mode === "single" && commons.length === 1) lines.push(`ACK ${oid}`);
    }
    if (mode === "multi_ack_detailed") lines.push(`ACK ${oid} common`);
    else if (mode === "multi_ack") lines.push(`ACK ${oid} continue`);
  }

  let sendPack: boolean;
  if (input.done) {
    // Final answer: ACK the last common (multi-ack modes), or NAK when nothing is common; the pack follows.
    if (commons.length > 0) {
      if (multiAck) lines.push(`ACK ${lastCommon}`);
    } else lines.push("NAK");
    sendPack = true;
  } else if (input.haveListClosed === false) {
    // The body ended inside the have list: nothing closes the round, so nothing more is said.
    sendPack = false;
  } else {
    // End of a round without `done`.
    if (mode === "multi_ack_detailed" && gotCommon && !gotOther && (await ready())) {
      sentReady = true;
      lines.push(`ACK ${lastCommon} ready`);
    }
    if (commons.length === 0 || multiAck) lines.push("NAK");
    sendPack = noDone && sentReady;
    if (sendPack) lines.push(`ACK ${lastCommon}`);
  }

  return { lines, bytes: concatBytes(lines.map((l) => encodeLine(l))), sendPack, commons };
}

/**
 * The shallow section sent before the ACKs when the client asked for a depth (`wantsShallowUpdate`):
 * `shallow` for each commit whose parents will not be sent, `unshallow` for each client shallow whose
 * parents now will be, then a flush. It is sent even when both lists are empty.
 */
export function formatShallowUpdate(update: { shallow: readonly string[]; unshallow: readonly string[] }): Uint8Array {
  return concatBytes([
    ...update.shallow.map((oid) => encodeLine(`shallow ${oid}`)),
    ...update.unshallow.map((oid) => encodeLine(`unshallow ${oid}`)),
    FLUSH_PKT,
  ]);
}
