export {
  DEVELOPMENT_SECRETS_KEY,
  type SecretBox,
  SecretDecryptionError,
  secretBox,
  secretBoxFor,
  secretContext,
} from "./encryption";
