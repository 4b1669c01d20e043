import { hasControlChar } from "./capabilities";
import { concatBytes, encodeLine, FLUSH_PKT } from "./pkt-line";
import { type SideBandMode, sideBandPackets } from "./side-band";

export type RefStatus = { ref: string; ok: true } | { ref: string; ok: false; reason: string };

export interface Report {
  /** null: `unpack ok`; otherwise why the pack was refused (`unpack <error>`). */
  unpackError: string | null;
  /** One status per command, in request order. */
  refs: readonly RefStatus[];
}

/** Reasons and errors go on one pkt-line: no control characters (a storage message could carry some). */
function oneLine(text: string): string {
  let out = "";
  for (const ch of text) out += hasControlChar(ch) ? " " : ch;
  return out.trim() || "failed";
}

/**
 * The report-status response (gitprotocol-pack "Report Status"): `unpack ok|<error>`, `ok <ref>` or
 * `ng <ref> <reason>` per command, a flush. With side-band negotiated the whole report (its flush included)
 * travels on band 1 and the response ends with a flush of its own, as receive-pack does.
 */
export function buildReportStatus(report: Report, sideBand: SideBandMode | null = null): Uint8Array {
  const lines = [encodeLine(report.unpackError === null ? "unpack ok" : `unpack ${oneLine(report.unpackError)}`)];
  for (const r of report.refs) lines.push(encodeLine(r.ok ? `ok ${r.ref}` : `ng ${r.ref} ${oneLine(r.reason)}`));
  lines.push(FLUSH_PKT);
  const plain = concatBytes(lines);
  if (!sideBand) return plain;
  return concatBytes([...sideBandPackets(1, plain, sideBand), FLUSH_PKT]);
}
