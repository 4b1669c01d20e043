/**
 * The one id generator: `<prefix><32 lowercase hex>` (16 random bytes), with a short prefix per kind of row.
 */
import { bytesToHex } from "./hex";

const prefixes = {
  tenant: "tnt_",
  principal: "prn_",
  role: "rol_",
  grant: "grt_",
  agent: "agt_",
  agentVersion: "avr_",
  federationTrust: "ftr_",
  provider: "prv_",
  oauthClient: "ocl_",
  credential: "crd_",
  offering: "ofr_",
  instance: "ins_",
  session: "ses_",
  sessionMail: "sml_",
  inferenceTurn: "itn_",
  turnPart: "tp_",
  asset: "ast_",
  agentAsset: "aas_",
  gitToken: "gtk_",
  wallet: "wlt_",
  transaction: "txn_",
  sidecar: "sdc_",
  approval: "apr_",
  auditEntry: "aud_",
  instanceLog: "log_",
} as const;

export type IdKind = keyof typeof prefixes;

export function newId(kind: IdKind): string {
  return prefixes[kind] + bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** True when `id` has the shape `newId(kind)` produces; lets routes 404 early on garbage ids. */
export function isId(kind: IdKind, id: string): boolean {
  const prefix = prefixes[kind];
  return id.length === prefix.length + 32 && id.startsWith(prefix) && /^[0-9a-f]{32}$/.test(id.slice(prefix.length));
}
