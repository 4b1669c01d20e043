import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addDecimal,
  compareDecimal,
  DECIMAL_SCALE,
  DecimalError,
  fromUnits,
  isDecimal,
  MAX_INTEGER_DIGITS,
  normalizeDecimal,
  subDecimal,
  toUnits,
  tryToUnits,
} from "./decimal";

const E18 = 10n ** 18n;

describe("parsing", () => {
  it("reads integers and fractions exactly, in 10^-18 units", () => {
    expect(toUnits("0")).toBe(0n);
    expect(toUnits("12.345")).toBe(12_345n * 10n ** 15n);
    expect(toUnits("-0.5")).toBe(-E18 / 2n);
    expect(toUnits("0.000000000000000001")).toBe(1n);
    expect(toUnits("007.10")).toBe(7n * E18 + E18 / 10n);
    expect(toUnits("9".repeat(MAX_INTEGER_DIGITS))).toBe((10n ** 30n - 1n) * E18);
  });

  it("rejects anything but plain decimal notation", () => {
    const bad: unknown[] = [
      "",
      "-",
      "+1",
      "1e5",
      "1E5",
      "1.",
      ".5",
      "-.5",
      "1.2.3",
      " 1",
      "1 ",
      "1_000",
      "1,5",
      "0x10",
      "NaN",
      "Infinity",
      "--1",
      "١",
      `0.${"0".repeat(DECIMAL_SCALE)}1`,
      "1".repeat(MAX_INTEGER_DIGITS + 1),
      1,
      1n,
      null,
      undefined,
      {},
    ];
    for (const value of bad) {
      expect(tryToUnits(value), String(value)).toBeNull();
      expect(isDecimal(value)).toBe(false);
    }
    expect(() => toUnits("1e5")).toThrow(DecimalError);
    expect(() => toUnits("1e5")).toThrow('Not a decimal string: "1e5"');
  });

  it("accepts exactly 18 fractional digits", () => {
    expect(isDecimal(`0.${"9".repeat(DECIMAL_SCALE)}`)).toBe(true);
  });
});

describe("formatting and arithmetic", () => {
  it("renders canonical strings", () => {
    expect(fromUnits(0n)).toBe("0");
    expect(fromUnits(-1n)).toBe("-0.000000000000000001");
    expect(normalizeDecimal("1.50")).toBe("1.5");
    expect(normalizeDecimal("-0.000")).toBe("0");
    expect(normalizeDecimal("0010")).toBe("10");
    expect(normalizeDecimal("-12.340")).toBe("-12.34");
  });

  it("adds, subtracts and compares without float error", () => {
    expect(addDecimal("0.1", "0.2")).toBe("0.3");
    expect(subDecimal("0.3", "0.1")).toBe("0.2");
    expect(subDecimal("1", "1.000000000000000001")).toBe("-0.000000000000000001");
    expect(addDecimal("-5", "5")).toBe("0");
    expect(compareDecimal("0.30", "0.3")).toBe(0);
    expect(compareDecimal("-1", "0")).toBe(-1);
    expect(compareDecimal("10", "9.999999999999999999")).toBe(1);
    expect(() => addDecimal("1", "one")).toThrow(DecimalError);
  });
});

/** A decimal string built digit by digit, with the BigInt value it stands for at its own number of places. */
const decimalArb = fc
  .record({
    negative: fc.boolean(),
    integer: fc.stringMatching(/^\d{1,30}$/),
    fraction: fc.stringMatching(/^\d{0,18}$/),
  })
  .map(({ negative, integer, fraction }) => {
    const text = `${negative ? "-" : ""}${integer}${fraction ? `.${fraction}` : ""}`;
    const scaled = BigInt(`${integer}${fraction}`) * (negative ? -1n : 1n);
    return { text, scaled, places: fraction.length };
  });

/** Brings a value at `places` decimal places to `target` places. */
const rescale = (scaled: bigint, places: number, target: number) => scaled * 10n ** BigInt(target - places);

/** An independent rendering of a value at `places` decimal places, trailing zeros trimmed. */
function render(scaled: bigint, places: number): string {
  const digits = (scaled < 0n ? -scaled : scaled).toString().padStart(places + 1, "0");
  const integer = digits.slice(0, digits.length - places);
  const fraction = digits.slice(digits.length - places).replace(/0+$/, "");
  return `${scaled < 0n ? "-" : ""}${integer}${fraction ? `.${fraction}` : ""}`;
}

describe("properties", () => {
  const params = { numRuns: 2_000, seed: 20260601 };

  it("parses every generated decimal to its value", () => {
    fc.assert(
      fc.property(decimalArb, ({ text, scaled, places }) => {
        expect(toUnits(text)).toBe(rescale(scaled, places, DECIMAL_SCALE));
      }),
      params,
    );
  });

  it("round-trips through the canonical form", () => {
    fc.assert(
      fc.property(decimalArb, ({ text, scaled, places }) => {
        const canonical = normalizeDecimal(text);
        expect(normalizeDecimal(canonical)).toBe(canonical);
        expect(compareDecimal(canonical, text)).toBe(0);
        expect(canonical).toBe(render(scaled, places));
      }),
      params,
    );
  });

  it("adds, subtracts and compares like BigInt at a common scale", () => {
    fc.assert(
      fc.property(decimalArb, decimalArb, (a, b) => {
        const places = Math.max(a.places, b.places);
        const x = rescale(a.scaled, a.places, places);
        const y = rescale(b.scaled, b.places, places);
        expect(addDecimal(a.text, b.text)).toBe(render(x + y, places));
        expect(subDecimal(a.text, b.text)).toBe(render(x - y, places));
        expect(compareDecimal(a.text, b.text)).toBe(x < y ? -1 : x > y ? 1 : 0);
        expect(subDecimal(addDecimal(a.text, b.text), b.text)).toBe(normalizeDecimal(a.text));
      }),
      params,
    );
  });
});
