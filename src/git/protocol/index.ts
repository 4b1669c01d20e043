/**
 * git smart-HTTP protocol layer (v0/v1 and v2 for fetch, stateless): framing, requests, negotiation, responses. Pure
 * functions over bytes and streams; storage and pack building are injected by the callers.
 */
export {
  type AdvertisedRef,
  type AdvertisementInput,
  agentCapability,
  buildAdvertisement,
  RECEIVE_PACK_CAPABILITIES,
  UPLOAD_PACK_CAPABILITIES,
  visibleRefs,
} from "./advertisement";
export { capabilityName, capabilityValue, isOid, negotiatedCapabilities, ZERO_OID } from "./capabilities";
export { isProtocolError, ProtocolError, type ProtocolErrorCode } from "./errors";
export { DEFAULT_MAX_REQUEST_BYTES, decodeRequestBody } from "./gzip";
export {
  type AckMode,
  ackModeOf,
  formatShallowUpdate,
  type NegotiationInput,
  type NegotiationResult,
  negotiate,
} from "./negotiation";
export {
  concatBytes,
  DELIM_PKT,
  decodePkts,
  encodeErr,
  encodeLine,
  encodePkt,
  FLUSH_PKT,
  MAX_PKT_LENGTH,
  MAX_PKT_PAYLOAD,
  type Packet,
  PktLineReader,
  payloadText,
  RESPONSE_END_PKT,
  readAllBytes,
} from "./pkt-line";
export {
  parseReceiveRequest,
  parseReceiveRequestBytes,
  type ReceiveRequest,
  type ReceiveRequestOptions,
  type RefCommand,
  type RefCommandKind,
} from "./receive-request";
export { isValidRefName, MAX_REF_NAME_LENGTH, refNameProblem } from "./ref-name";
export { compileRefPattern, matchRefPattern } from "./ref-pattern";
export {
  expandTokenActions,
  type GitService,
  isGitService,
  isReadAction,
  type RepoAction,
  type RepoVerb,
  repoActionFor,
  verbForRepoAction,
} from "./repo-action";
export { buildReportStatus, type RefStatus, type Report } from "./report-status";
export {
  type Band,
  type Demuxed,
  demuxSideBand,
  fatalPackets,
  negotiatedSideBand,
  progressPackets,
  SIDE_BAND_64K_MAX_DATA,
  SIDE_BAND_MAX_DATA,
  type SideBandMode,
  type SideBandStreamOptions,
  sideBandMaxData,
  sideBandPackets,
  sideBandStream,
} from "./side-band";
export {
  parseUploadRequest,
  type UploadRequest,
  type UploadRequestOptions,
  wantsShallowUpdate,
} from "./upload-request";
export {
  buildV2Advertisement,
  formatAcknowledgments,
  formatLsRefs,
  formatShallowInfo,
  type LsRefsArgs,
  PACKFILE_SECTION,
  parseFetchArgs,
  parseLsRefsArgs,
  parseV2Request,
  V2_CAPABILITIES,
  type V2Request,
  wantsProtocolV2,
} from "./v2";
