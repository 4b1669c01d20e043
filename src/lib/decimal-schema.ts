/**
 * Request schemas for money: exact decimal strings (see `lib/decimal`), never JSON numbers, so that no
 * amount passes through binary floating point. "1e5", "-3", "abc" and "" are validation failures.
 */
import { z } from "@hono/zod-openapi";
import { DECIMAL_SCALE, tryToUnits } from "./decimal";

const described = {
  description: `Exact decimal string: digits, optionally "." and up to ${DECIMAL_SCALE} more digits`,
  example: "12.50",
};

/** A decimal string ≥ 0. */
export const NonNegativeDecimal = z
  .string()
  .max(64)
  .refine((v) => (tryToUnits(v) ?? -1n) >= 0n, 'must be a non-negative decimal string such as "12.50"')
  .openapi(described);

/** A decimal string > 0. */
export const PositiveDecimal = z
  .string()
  .max(64)
  .refine((v) => (tryToUnits(v) ?? 0n) > 0n, 'must be a positive decimal string such as "12.50"')
  .openapi(described);
