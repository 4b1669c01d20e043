export { assertCanConfer, decide, idResource, isAllowed, requestContext, requireGrant } from "./require-grant";
