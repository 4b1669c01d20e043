/**
 * Mail for instances: OpenPGP signing keys, MIME building, signature checks, parsing to the JMAP-shaped
 * MailResponse, blob extraction and threading. parse.ts and build.ts (and mime.ts, parts.ts) use only Web
 * APIs and postal-mime, so the Node sidecar can import them; keys.ts and verify.ts need openpgp.
 */
export {
  type AgentReplyInput,
  buildAgentReply,
  buildUserMessage,
  formatAddress,
  formatMailDate,
  formatMessageId,
  type MailAddress,
  MailBuildError,
  normalizeText,
  type UserMessageInput,
} from "./build";
export {
  generateMailKey,
  keyFingerprint,
  loadPrivateKey,
  loadPublicKey,
  type MailKey,
  MailKeyError,
  mailSigner,
  signDetached,
  verifyDetached,
} from "./keys";
export { MailParseError, MailPartNotFound } from "./mime";
export {
  type EmailAddress,
  type EmailAttachment,
  type EmailBodyPart,
  type EmailBodyValue,
  type ParsedEmail,
  parseMailToEmail,
} from "./parse";
export { attachmentDisposition, blobIdFor, extractPart, type MailPart, parseBlobId } from "./parts";
export { type ConnectorThreadState, type ThreadHeaders, threadHeaders } from "./threading";
export { type SignatureCheck, verifySignedMessage } from "./verify";
