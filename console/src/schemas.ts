/** The API's own types, generated from its OpenAPI description (`npm run console:types`). */
import type { components } from "./api-types";

type Schemas = components["schemas"];
export type Schema<K extends keyof Schemas> = Schemas[K];
