/**
 * Exact decimal strings (balances, amounts, costs) formatted for reading without ever going through a
 * float: the integer part is grouped as a BigInt, the fraction is kept digit for digit.
 */

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

const grouping = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimalSeparator = new Intl.NumberFormat().formatToParts(1.5).find((p) => p.type === "decimal")?.value ?? ".";

/**
 * `"12345.5000"` → `"12,345.50"` (in the reader's locale). `minFraction` pads the fraction (money reads
 * better with cents); trailing zeros beyond it are dropped. Anything that is not a decimal is shown as is.
 */
export function formatDecimal(value: string, minFraction = 0): string {
  const m = DECIMAL.exec(value.trim());
  if (!m) return value;
  const [, sign = "", int = "0", frac = ""] = m;
  const trimmed = frac.replace(/0+$/, "").padEnd(minFraction, "0");
  const grouped = grouping.format(BigInt(int));
  return `${sign === "-" ? "−" : ""}${grouped}${trimmed ? decimalSeparator + trimmed : ""}`;
}

/** A sum of money: `"0.006"` in `"USD"` → `"0.006 USD"`. */
export function formatMoney(value: string, currency: string | undefined): string {
  const amount = formatDecimal(value, 2);
  return currency ? `${amount} ${currency}` : amount;
}

/** What the API accepts as an amount: digits, optionally "." and up to 18 more digits, not zero. */
export const AMOUNT_PATTERN = "\\d+(\\.\\d{1,18})?";

export function isPositiveDecimal(value: string): boolean {
  return new RegExp(`^${AMOUNT_PATTERN}$`).test(value) && /[1-9]/.test(value);
}
