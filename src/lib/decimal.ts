/**
 * Exact decimal arithmetic on strings. Money never goes through binary floating point: a decimal string such
 * as "12.345" is held as a BigInt count of 10^-18 units, and results are rendered back as canonical strings
 * ("12.345", "0", "-0.5": no trailing zeros, no "-0").
 *
 * Accepted syntax: an optional "-", one or more digits, then optionally "." and 1 to 18 digits. No "+", no
 * exponent, no spaces, no bare ".5" or "5.". The integer part is capped so that a hostile input cannot make
 * BigInt work unbounded (results of arithmetic are not capped).
 */

/** Fractional digits kept exactly. Inputs with more are rejected rather than rounded. */
export const DECIMAL_SCALE = 18;
/** Integer digits accepted; far beyond any real balance, small enough to keep arithmetic cheap. */
export const MAX_INTEGER_DIGITS = 30;

const DECIMAL_SYNTAX = new RegExp(`^(-?)(\\d{1,${MAX_INTEGER_DIGITS}})(?:\\.(\\d{1,${DECIMAL_SCALE}}))?$`);
const UNIT = 10n ** BigInt(DECIMAL_SCALE);

export class DecimalError extends Error {
  constructor(value: unknown) {
    super(`Not a decimal string: ${typeof value === "string" ? JSON.stringify(value.slice(0, 64)) : typeof value}`);
    this.name = "DecimalError";
  }
}

/** The value as a BigInt of 10^-18 units, or null when it is not a well-formed decimal string. */
export function tryToUnits(value: unknown): bigint | null {
  if (typeof value !== "string") return null;
  const match = DECIMAL_SYNTAX.exec(value);
  if (!match) return null;
  const [, sign, integer = "0", fraction = ""] = match;
  const units = BigInt(integer) * UNIT + BigInt(fraction.padEnd(DECIMAL_SCALE, "0"));
  return sign === "-" ? -units : units;
}

/** The value as a BigInt of 10^-18 units; throws DecimalError when malformed. */
export function toUnits(value: string): bigint {
  const units = tryToUnits(value);
  if (units === null) throw new DecimalError(value);
  return units;
}

/** The canonical decimal string for a count of 10^-18 units. */
export function fromUnits(units: bigint): string {
  const negative = units < 0n;
  const magnitude = negative ? -units : units;
  const integer = (magnitude / UNIT).toString();
  const fraction = (magnitude % UNIT).toString().padStart(DECIMAL_SCALE, "0").replace(/0+$/, "");
  const digits = fraction === "" ? integer : `${integer}.${fraction}`;
  return negative ? `-${digits}` : digits;
}

export function isDecimal(value: unknown): value is string {
  return tryToUnits(value) !== null;
}

/** The canonical spelling of a decimal string ("1.50" → "1.5", "-0" → "0"). */
export function normalizeDecimal(value: string): string {
  return fromUnits(toUnits(value));
}

export function compareDecimal(a: string, b: string): -1 | 0 | 1 {
  const x = toUnits(a);
  const y = toUnits(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function addDecimal(a: string, b: string): string {
  return fromUnits(toUnits(a) + toUnits(b));
}

export function subDecimal(a: string, b: string): string {
  return fromUnits(toUnits(a) - toUnits(b));
}
