export { resolveTenant } from "./tenant";
