export {
  GIT_REALM,
  type GitTokenAuthOptions,
  gitTokenAuth,
  refAllowed,
  secretFromAuthorization,
  smartHttpAction,
} from "./git-token";
