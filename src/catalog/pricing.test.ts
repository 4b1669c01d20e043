import { describe, expect, it } from "vitest";
import { usageCost } from "./pricing";

const usage = (over: Partial<Record<"input" | "output" | "cacheRead" | "cacheWrite" | "thinking", number>>) => ({
  input: 0,
  output: 0,
  cacheRead: 0,
  cacheWrite: 0,
  thinking: 0,
  ...over,
});

describe("usageCost", () => {
  it("prices each kind of token per million, exactly", () => {
    const pricing = { input: "2.50", output: "10", cacheRead: "1.25", cacheWrite: "3.75", thinking: "12" };
    expect(usageCost(pricing, usage({ input: 1_000_000 }))).toBe("2.5");
    expect(usageCost(pricing, usage({ input: 1234, output: 567 }))).toBe("0.008755"); // 0.003085 + 0.00567
    expect(usageCost(pricing, usage({ input: 100, output: 200, cacheRead: 300, cacheWrite: 400, thinking: 500 }))).toBe(
      "0.010125",
    ); // 0.00025 + 0.002 + 0.000375 + 0.0015 + 0.006
  });

  it("charges cache at the input price and thinking at the output price unless priced", () => {
    expect(usageCost({ input: "1", output: "4" }, usage({ cacheRead: 1_000_000, cacheWrite: 1_000_000 }))).toBe("2");
    expect(usageCost({ input: "1", output: "4" }, usage({ thinking: 500_000 }))).toBe("2");
  });

  it("never goes through floating point: 0.1 + 0.2 stays 0.3", () => {
    expect(usageCost({ input: "0.1", output: "0.2" }, usage({ input: 1_000_000, output: 1_000_000 }))).toBe("0.3");
  });

  it("rounds down below 18 decimal places, and an unpriced model or kind costs nothing", () => {
    expect(usageCost({ input: "0.000000000001" }, usage({ input: 1 }))).toBe("0.000000000000000001");
    expect(usageCost({ input: "0.000000000000000001" }, usage({ input: 999_999 }))).toBe("0");
    expect(usageCost({ input: "0.000000000000000001" }, usage({ input: 1_000_000 }))).toBe("0.000000000000000001");
    expect(usageCost(null, usage({ input: 10, output: 10 }))).toBe("0");
    expect(usageCost({ output: "5" }, usage({ input: 1_000_000 }))).toBe("0");
  });
});
