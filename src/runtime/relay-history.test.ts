import { describe, expect, it } from "vitest";
import { type SseEvent, sseMessage } from "./fanout";
import { RelayHistory } from "./relay-history";

const event = (seq: number): SseEvent => ({ seq, text: sseMessage(seq, "custom.n", "{}") });
const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));

describe("RelayHistory", () => {
  it("gives the events after a seq, and says whether it reaches back that far", () => {
    const history = new RelayHistory(3);
    expect(history.covers(0)).toBe(false);
    for (let seq = 1; seq <= 5; seq++) history.add(event(seq));
    expect(ids(history.after(3))).toEqual([4, 5]);
    expect(ids(history.after(0))).toEqual([3, 4, 5]);
    expect(history.covers(2)).toBe(true);
    expect(history.covers(1)).toBe(false);
  });

  it("keeps at most maxEvents and maxChars, the newest always, across many adds", () => {
    const size = event(1000).text.length;
    const history = new RelayHistory(100, 10 * size);
    for (let seq = 1; seq <= 1_000; seq++) history.add(event(seq));
    expect(ids(history.after(0))).toEqual([991, 992, 993, 994, 995, 996, 997, 998, 999, 1000]);
    const tiny = new RelayHistory(100, 1);
    tiny.add(event(1));
    tiny.add(event(2));
    expect(ids(tiny.after(0))).toEqual([2]);
    tiny.clear();
    expect(tiny.after(0)).toBe("");
  });
});
