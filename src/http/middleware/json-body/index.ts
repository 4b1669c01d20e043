export { requireJsonBody } from "./json-body";
