/**
 * What a model call costs: each kind of token at its price per million, in exact decimals (never floats),
 * rounded down to the 18 decimal places money is kept in. Cache reads and writes cost the input price, and
 * thinking the output price, unless the model prices them itself; a kind without a price costs nothing.
 */
import { fromUnits, toUnits } from "../lib/decimal";
import type { TokenUsage } from "../runtime/protocol";
import type { ProviderModel } from "./models";

export type ModelPricing = NonNullable<ProviderModel["pricing"]>;

const PER = 1_000_000n;

export function usageCost(pricing: ModelPricing | null | undefined, usage: TokenUsage): string {
  if (!pricing) return "0";
  const price = (value: string | undefined) => (value === undefined ? 0n : toUnits(value));
  const input = price(pricing.input);
  const output = price(pricing.output);
  const lines: [number, bigint][] = [
    [usage.input, input],
    [usage.output, output],
    [usage.cacheRead, pricing.cacheRead === undefined ? input : price(pricing.cacheRead)],
    [usage.cacheWrite, pricing.cacheWrite === undefined ? input : price(pricing.cacheWrite)],
    [usage.thinking, pricing.thinking === undefined ? output : price(pricing.thinking)],
  ];
  let units = 0n;
  for (const [tokens, perMillion] of lines) units += BigInt(tokens) * perMillion;
  return fromUnits(units / PER);
}
