import { describe, expect, it } from "vitest";
import { RelayRouter, SUBSCRIBERS_PER_OBJECT, subscribersPerObject } from "./relay-routing";

describe("RelayRouter", () => {
  it("keeps the first subscribers on the instance, then fills relays in order", () => {
    const router = new RelayRouter(2, 3);
    expect(router.route(0)).toBeNull();
    expect(router.route(1)).toBeNull();
    expect([router.route(2), router.route(2), router.route(2), router.route(2), router.route(2)]).toEqual([
      0, 0, 1, 1, 2,
    ]);
    // A relay that lost its subscribers takes the next ones.
    router.report(0, 1);
    expect(router.route(2)).toBe(0);
    expect(router.route(2)).toBe(2);
    // Every relay full and no more allowed: the least loaded.
    router.report(1, 5);
    expect(router.route(2)).toBe(0);
  });

  it("takes what a relay reports, whichever index it has, and ignores indexes out of range", () => {
    const router = new RelayRouter(2, 4);
    router.report(2, 1);
    router.report(9, 1);
    expect([router.route(2), router.route(2), router.route(2)]).toEqual([0, 0, 1]);
  });

  it("reads the share of one object from the environment", () => {
    expect(subscribersPerObject({ SSE_SUBSCRIBERS_PER_OBJECT: "250" })).toBe(250);
    expect(subscribersPerObject({})).toBe(SUBSCRIBERS_PER_OBJECT);
    expect(subscribersPerObject({ SSE_SUBSCRIBERS_PER_OBJECT: "0" })).toBe(SUBSCRIBERS_PER_OBJECT);
  });
});
