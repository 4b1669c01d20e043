import { describe, expect, it } from "vitest";
import { bytesToHex, hexToBytes } from "./hex";

const plainHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

describe("hex", () => {
  it("writes lowercase digits for every byte value", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(bytesToHex(all)).toBe(plainHex(all));
    expect(bytesToHex(new Uint8Array(0))).toBe("");
  });

  it("converts inputs longer than one run, and reads its output back", () => {
    for (const length of [1, 20, 4095, 4096, 4097, 10_000]) {
      const bytes = crypto.getRandomValues(new Uint8Array(length));
      const hex = bytesToHex(bytes);
      expect(hex).toBe(plainHex(bytes));
      expect(hexToBytes(hex)).toEqual(bytes);
    }
  });

  it("reads either case", () => {
    expect(hexToBytes("00FFaB")).toEqual(Uint8Array.from([0, 255, 171]));
  });
});
