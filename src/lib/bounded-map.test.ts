import { describe, expect, it } from "vitest";
import { BoundedMap, ByteBoundedMap } from "./bounded-map";

describe("BoundedMap", () => {
  it("keeps the newest entries, a key set again counting as new", () => {
    const map = new BoundedMap<string, number>(2);
    map.set("a", 1).set("b", 2).set("a", 3).set("c", 4);
    expect([...map]).toEqual([
      ["a", 3],
      ["c", 4],
    ]);
  });
});

describe("ByteBoundedMap", () => {
  const bytes = (n: number) => new Uint8Array(n);
  const cache = () => new ByteBoundedMap<string, Uint8Array>(10, (value) => value.byteLength);

  it("drops the least recently used values once their sizes pass the budget", () => {
    const map = cache();
    map.set("a", bytes(4));
    map.set("b", bytes(4));
    expect(map.get("a")?.byteLength).toBe(4); // "a" is now the newest
    map.set("c", bytes(4));
    expect(map.get("b")).toBeUndefined();
    expect(map.get("a")?.byteLength).toBe(4);
    expect(map.get("c")?.byteLength).toBe(4);
    expect(map.bytes).toBe(8);
    expect(map.size).toBe(2);
  });

  it("counts a key set again once, at its new size", () => {
    const map = cache();
    map.set("a", bytes(4));
    map.set("a", bytes(6));
    expect(map.bytes).toBe(6);
    expect(map.size).toBe(1);
    expect(map.delete("a")).toBe(true);
    expect(map.delete("a")).toBe(false);
    expect(map.bytes).toBe(0);
  });

  it("keeps no value larger than the budget, and forgets what the key held", () => {
    const map = cache();
    map.set("a", bytes(4));
    map.set("b", bytes(3));
    map.set("a", bytes(11));
    expect(map.get("a")).toBeUndefined();
    expect(map.get("b")?.byteLength).toBe(3);
    expect(map.bytes).toBe(3);
  });

  it("keeps no value larger than its own cap, when one is given", () => {
    const map = new ByteBoundedMap<string, Uint8Array>(10, (value) => value.byteLength, 3);
    map.set("small", bytes(3));
    map.set("large", bytes(4));
    expect(map.get("small")?.byteLength).toBe(3);
    expect(map.get("large")).toBeUndefined();
    expect(map.bytes).toBe(3);
  });

  it("never holds more than its budget, whatever the order of sets", () => {
    const map = cache();
    for (let i = 0; i < 200; i++) {
      map.set(`k${i % 17}`, bytes((i * 7) % 12));
      expect(map.bytes).toBeLessThanOrEqual(10);
    }
  });
});
