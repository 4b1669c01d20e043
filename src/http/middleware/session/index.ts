export { loadSession, requireUser, signedInUser } from "./session";
