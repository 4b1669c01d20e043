import { describe, expect, it } from "vitest";
import {
  defaultConditionRegistry,
  ipRangeCondition,
  maxSpendPerDayCondition,
  parseIpAddress,
  requireApprovalAboveCondition,
  timeWindowCondition,
  validateConditions,
} from "./conditions";
import { evaluateGrants, explainGrants } from "./evaluate";
import type { ConditionEvaluator, GrantRule, RequestContext } from "./types";

const base: RequestContext = { now: Date.UTC(2026, 5, 1, 12, 0), principalId: "prn_1", tenantId: "tnt_1" };
const at = (iso: string): RequestContext => ({ ...base, now: Date.parse(iso) });
const from = (ip: string | null | undefined): RequestContext => ({ ...base, ip });
const spending = (spentToday: string | null | undefined, cost?: string | null): RequestContext => ({
  ...base,
  spentToday,
  cost,
});

function expectInvalid(evaluator: ConditionEvaluator, value: unknown, message: RegExp) {
  expect(evaluator.validate(value)).toMatch(message);
  // A value that does not validate never holds, whatever the request.
  expect(evaluator.evaluate(value, { ...base, ip: "10.0.0.1", spentToday: "0" })).toBe(false);
}

describe("time_window", () => {
  const utcNineToFive = { after: "09:00", before: "17:00", timezone: "UTC" };

  it("accepts a well-formed window", () => {
    expect(timeWindowCondition.validate(utcNineToFive)).toBeNull();
    expect(timeWindowCondition.validate({ after: "22:00", before: "06:00", timezone: "Europe/Paris" })).toBeNull();
    expect(timeWindowCondition.validate({ after: "00:00", before: "23:59", timezone: "Asia/Kolkata" })).toBeNull();
  });

  it("rejects malformed windows", () => {
    expectInvalid(timeWindowCondition, null, /must be an object/);
    expectInvalid(timeWindowCondition, ["09:00", "17:00"], /must be an object/);
    expectInvalid(timeWindowCondition, { before: "17:00", timezone: "UTC" }, /"after"/);
    expectInvalid(timeWindowCondition, { after: "09:00", timezone: "UTC" }, /"before"/);
    expectInvalid(timeWindowCondition, { after: "09:00", before: "17:00" }, /"timezone"/);
    for (const bad of ["24:00", "9:00", "09:60", "09:00:00", " 09:00", "0900", 900]) {
      expectInvalid(timeWindowCondition, { ...utcNineToFive, after: bad }, /"after" must be a time/);
    }
    expectInvalid(timeWindowCondition, { ...utcNineToFive, before: "09:00" }, /must differ/);
    expectInvalid(timeWindowCondition, { ...utcNineToFive, timezone: "Mars/Olympus_Mons" }, /not a known time zone/);
    expectInvalid(timeWindowCondition, { ...utcNineToFive, timezone: "" }, /IANA/);
    expectInvalid(timeWindowCondition, { ...utcNineToFive, timezone: 2 }, /IANA/);
    expectInvalid(timeWindowCondition, { ...utcNineToFive, befor: "18:00" }, /unknown field "befor"/);
  });

  it("holds in [after, before) and not outside", () => {
    const holds = (iso: string) => timeWindowCondition.evaluate(utcNineToFive, at(iso));
    expect(holds("2026-06-01T08:59:59.999Z")).toBe(false);
    expect(holds("2026-06-01T09:00:00.000Z")).toBe(true);
    expect(holds("2026-06-01T16:59:59.999Z")).toBe(true);
    expect(holds("2026-06-01T17:00:00.000Z")).toBe(false);
  });

  it("wraps past midnight when after > before", () => {
    const night = { after: "22:00", before: "06:00", timezone: "UTC" };
    const holds = (iso: string) => timeWindowCondition.evaluate(night, at(iso));
    expect(holds("2026-06-01T21:59:00Z")).toBe(false);
    expect(holds("2026-06-01T22:00:00Z")).toBe(true);
    expect(holds("2026-06-01T23:59:00Z")).toBe(true);
    expect(holds("2026-06-02T00:00:00Z")).toBe(true);
    expect(holds("2026-06-02T05:59:00Z")).toBe(true);
    expect(holds("2026-06-02T06:00:00Z")).toBe(false);
    expect(holds("2026-06-02T12:00:00Z")).toBe(false);
  });

  it("reads the wall clock of the window's time zone, daylight saving included", () => {
    const newYork = { after: "09:00", before: "17:00", timezone: "America/New_York" };
    expect(timeWindowCondition.evaluate(newYork, at("2026-06-01T13:00:00Z"))).toBe(true); // 09:00 EDT
    expect(timeWindowCondition.evaluate(newYork, at("2026-06-01T12:59:00Z"))).toBe(false); // 08:59 EDT
    expect(timeWindowCondition.evaluate(newYork, at("2026-01-15T13:30:00Z"))).toBe(false); // 08:30 EST
    expect(timeWindowCondition.evaluate(newYork, at("2026-01-15T14:00:00Z"))).toBe(true); // 09:00 EST
    const kolkata = { after: "09:00", before: "09:30", timezone: "Asia/Kolkata" }; // UTC+05:30
    expect(timeWindowCondition.evaluate(kolkata, at("2026-06-01T03:29:00Z"))).toBe(false);
    expect(timeWindowCondition.evaluate(kolkata, at("2026-06-01T03:30:00Z"))).toBe(true);
  });

  it("reports the first hour after midnight as 00, not 24", () => {
    const firstHour = { after: "00:00", before: "01:00", timezone: "Europe/Paris" };
    expect(timeWindowCondition.evaluate(firstHour, at("2026-06-01T22:30:00Z"))).toBe(true); // 00:30 CEST
    expect(timeWindowCondition.evaluate(firstHour, at("2026-06-01T21:30:00Z"))).toBe(false); // 23:30 CEST
  });
});

describe("parseIpAddress", () => {
  const v4 = (a: number, b: number, c: number, d: number) =>
    (0xffffn << 32n) | BigInt(((a * 256 + b) * 256 + c) * 256 + d);

  it("maps IPv4 into ::ffff:0:0/96", () => {
    expect(parseIpAddress("1.2.3.4")).toBe(v4(1, 2, 3, 4));
    expect(parseIpAddress("0.0.0.0")).toBe(v4(0, 0, 0, 0));
    expect(parseIpAddress("255.255.255.255")).toBe(v4(255, 255, 255, 255));
    expect(parseIpAddress("::ffff:1.2.3.4")).toBe(v4(1, 2, 3, 4));
    expect(parseIpAddress("::FFFF:0102:0304")).toBe(v4(1, 2, 3, 4));
    expect(parseIpAddress("0:0:0:0:0:ffff:1.2.3.4")).toBe(v4(1, 2, 3, 4));
  });

  it("expands '::' to one or more zero groups wherever it sits", () => {
    expect(parseIpAddress("::")).toBe(0n);
    expect(parseIpAddress("::1")).toBe(1n);
    expect(parseIpAddress("1::")).toBe(1n << 112n);
    expect(parseIpAddress("2001:db8::1")).toBe((0x2001n << 112n) | (0xdb8n << 96n) | 1n);
    expect(parseIpAddress("1:2:3:4:5:6:7::")).toBe(parseIpAddress("1:2:3:4:5:6:7:0"));
    expect(parseIpAddress("::2:3:4:5:6:7:8")).toBe(parseIpAddress("0:2:3:4:5:6:7:8"));
    expect(parseIpAddress("1:2::7:8")).toBe(parseIpAddress("1:2:0:0:0:0:7:8"));
    expect(parseIpAddress("FFFF:ffff:FFFF:ffff:FFFF:ffff:FFFF:ffff")).toBe((1n << 128n) - 1n);
    expect(parseIpAddress("1:2:3:4:5:6:1.2.3.4")).toBe(parseIpAddress("1:2:3:4:5:6:102:304"));
    expect(parseIpAddress("::1.2.3.4")).toBe(0x01020304n); // IPv4-compatible, not mapped
  });

  it("rejects malformed addresses", () => {
    const bad = [
      "",
      ":",
      ":::",
      "1:",
      ":1",
      "1::2::3",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "12345::",
      "g::",
      "1:2:3:4:5:6:7:1.2.3.4",
      "1.2.3.4::",
      "::1.2.3.4:5",
      "::ffff:1.2.3",
      "fe80::1%eth0",
      "[::1]",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.-4",
      "1.2.3.4 ",
      " 1.2.3.4",
      "1..3.4",
      "0x1.2.3.4",
    ];
    for (const text of bad) expect(parseIpAddress(text), text).toBeNull();
  });
});

describe("ip_range", () => {
  const ranges = (...cidrs: string[]) => ({ cidrs });
  const holds = (cidrs: string[], ip: string | null | undefined) =>
    ipRangeCondition.evaluate(ranges(...cidrs), from(ip));

  it("accepts IPv4 and IPv6 CIDRs and bare addresses", () => {
    expect(
      ipRangeCondition.validate(ranges("10.0.0.0/8", "2001:db8::/32", "192.168.1.7", "::1", "0.0.0.0/0")),
    ).toBeNull();
  });

  it("rejects malformed lists and ranges, naming the bad entry", () => {
    expectInvalid(ipRangeCondition, "10.0.0.0/8", /must be an object/);
    expectInvalid(ipRangeCondition, { cidrs: [] }, /non-empty array/);
    expectInvalid(ipRangeCondition, { cidrs: "10.0.0.0/8" }, /non-empty array/);
    expectInvalid(ipRangeCondition, { cidrs: ["10.0.0.0/8", 10] }, /^cidrs\[1\]: must be a string/);
    expectInvalid(ipRangeCondition, { cidrs: ["10.0.0.0/8"], ranges: [] }, /unknown field "ranges"/);
    expectInvalid(ipRangeCondition, ranges("10.0.0.0/33"), /^cidrs\[0\]: .*prefix length outside 0-32/);
    expectInvalid(ipRangeCondition, ranges("::/129"), /prefix length outside 0-128/);
    expectInvalid(ipRangeCondition, ranges("10.0.0.0/"), /prefix length/);
    expectInvalid(ipRangeCondition, ranges("10.0.0.0/08"), /prefix length/);
    expectInvalid(ipRangeCondition, ranges("10.0.0.0/-1"), /prefix length/);
    expectInvalid(ipRangeCondition, ranges("10.0.0.0/8/8"), /prefix length/);
    expectInvalid(ipRangeCondition, ranges("10.0.0.1/8"), /host bits set below \/8/);
    expectInvalid(ipRangeCondition, ranges("2001:db8::1/32"), /host bits/);
    expectInvalid(ipRangeCondition, ranges("10.0.0/8"), /not an IPv4 or IPv6 address/);
    expectInvalid(ipRangeCondition, ranges("/8"), /not an IPv4 or IPv6 address/);
    expectInvalid(ipRangeCondition, { cidrs: Array.from({ length: 257 }, () => "10.0.0.0/8") }, /at most 256/);
  });

  it("matches IPv4 prefixes at their boundaries", () => {
    expect(holds(["10.0.0.0/8"], "10.0.0.0")).toBe(true);
    expect(holds(["10.0.0.0/8"], "10.255.255.255")).toBe(true);
    expect(holds(["10.0.0.0/8"], "11.0.0.0")).toBe(false);
    expect(holds(["10.0.0.0/8"], "9.255.255.255")).toBe(false);
    expect(holds(["192.168.1.128/25"], "192.168.1.127")).toBe(false);
    expect(holds(["192.168.1.128/25"], "192.168.1.255")).toBe(true);
    expect(holds(["192.168.1.7"], "192.168.1.7")).toBe(true);
    expect(holds(["192.168.1.7"], "192.168.1.8")).toBe(false);
    expect(holds(["0.0.0.0/0"], "203.0.113.9")).toBe(true);
  });

  it("matches IPv6 prefixes at their boundaries", () => {
    expect(holds(["2001:db8::/32"], "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(true);
    expect(holds(["2001:db8::/32"], "2001:db9::")).toBe(false);
    expect(holds(["2001:DB8::/32"], "2001:0db8::abcd")).toBe(true);
    expect(holds(["::1"], "0:0:0:0:0:0:0:1")).toBe(true);
    expect(holds(["::/0"], "2606:4700::1111")).toBe(true);
    expect(holds(["2001:db8::/127"], "2001:db8::1")).toBe(true);
    expect(holds(["2001:db8::/128"], "2001:db8::1")).toBe(false);
  });

  it("matches IPv4-mapped IPv6 clients against IPv4 ranges and the other way round", () => {
    expect(holds(["10.0.0.0/8"], "::ffff:10.1.2.3")).toBe(true);
    expect(holds(["10.0.0.0/8"], "::ffff:a01:203")).toBe(true);
    expect(holds(["10.0.0.0/8"], "::ffff:11.1.2.3")).toBe(false);
    expect(holds(["::ffff:10.0.0.0/104"], "10.9.9.9")).toBe(true);
    expect(holds(["::ffff:0:0/96"], "1.2.3.4")).toBe(true);
  });

  it("keeps the families apart otherwise", () => {
    expect(holds(["0.0.0.0/0"], "2001:db8::1")).toBe(false);
    expect(holds(["0.0.0.0/0"], "::1.2.3.4")).toBe(false);
    expect(holds(["2001:db8::/32"], "32.1.13.184")).toBe(false);
  });

  it("matches when any range holds", () => {
    expect(holds(["10.0.0.0/8", "2001:db8::/32"], "2001:db8::5")).toBe(true);
    expect(holds(["10.0.0.0/8", "172.16.0.0/12"], "172.31.255.255")).toBe(true);
    expect(holds(["10.0.0.0/8", "172.16.0.0/12"], "172.32.0.0")).toBe(false);
  });

  it("fails closed when the client IP is missing or unparsable", () => {
    for (const ip of [undefined, null, "", "unknown", "10.0.0.1, 10.0.0.2", "10.0.0.1:443"]) {
      expect(holds(["0.0.0.0/0", "::/0"], ip)).toBe(false);
    }
  });
});

describe("max_spend_per_day", () => {
  const limit = (amount: unknown, currency?: unknown) => (currency === undefined ? { amount } : { amount, currency });
  const holds = (amount: string, ctx: RequestContext) => maxSpendPerDayCondition.evaluate(limit(amount), ctx);

  it("accepts a non-negative decimal amount and an optional currency code", () => {
    expect(maxSpendPerDayCondition.validate(limit("10"))).toBeNull();
    expect(maxSpendPerDayCondition.validate(limit("0"))).toBeNull();
    expect(maxSpendPerDayCondition.validate(limit("12.500000000000000001", "USDC"))).toBeNull();
  });

  it("rejects amounts that are not exact non-negative decimal strings", () => {
    for (const amount of [
      10,
      "1e5",
      "+1",
      "1.",
      ".5",
      "NaN",
      "Infinity",
      " 1",
      "0x10",
      "1.0000000000000000001",
      null,
    ]) {
      expectInvalid(maxSpendPerDayCondition, limit(amount), /"amount" must be a decimal string/);
    }
    expectInvalid(maxSpendPerDayCondition, limit("-0.01"), /must not be negative/);
    expectInvalid(maxSpendPerDayCondition, limit("10", ""), /"currency"/);
    expectInvalid(maxSpendPerDayCondition, limit("10", 840), /"currency"/);
    expectInvalid(maxSpendPerDayCondition, { amount: "10", per: "day" }, /unknown field "per"/);
    expectInvalid(maxSpendPerDayCondition, "10", /must be an object/);
  });

  it("holds while spent + cost stays at or under the amount", () => {
    expect(holds("10", spending("9", "1"))).toBe(true);
    expect(holds("10", spending("9", "1.000000000000000001"))).toBe(false);
    expect(holds("10", spending("10"))).toBe(true);
    expect(holds("10", spending("10.01"))).toBe(false);
    expect(holds("10", spending("10", null))).toBe(true);
    expect(holds("0", spending("0", "0"))).toBe(true);
    expect(holds("0", spending("0", "0.000000000000000001"))).toBe(false);
  });

  it("adds exactly, where binary floating point would not", () => {
    expect(0.1 + 0.2 <= 0.3).toBe(false);
    expect(holds("0.3", spending("0.1", "0.2"))).toBe(true);
  });

  it("fails closed on missing or malformed spending data", () => {
    expect(holds("10", spending(undefined))).toBe(false);
    expect(holds("10", spending(null, "1"))).toBe(false);
    expect(holds("10", spending("abc"))).toBe(false);
    expect(holds("10", spending("1", "1e1"))).toBe(false);
    expect(holds("10", spending("1", "-5"))).toBe(false);
  });

  it("lets refunds (a negative spend) count", () => {
    expect(holds("1", spending("-2", "3"))).toBe(true);
  });
});

describe("validateConditions", () => {
  const validate = (conditions: unknown) => validateConditions(conditions, defaultConditionRegistry);

  it("accepts no conditions and well-formed ones", () => {
    expect(validate(null)).toEqual([]);
    expect(validate({})).toEqual([]);
    expect(
      validate({
        time_window: { after: "09:00", before: "17:00", timezone: "UTC" },
        ip_range: { cidrs: ["10.0.0.0/8"] },
        max_spend_per_day: { amount: "25.00", currency: "USD" },
      }),
    ).toEqual([]);
  });

  it("requires null or a plain object", () => {
    for (const conditions of [undefined, [], "time_window", 3, new Date(0), new Map()]) {
      expect(validate(conditions)).toEqual(["Conditions must be an object or null"]);
    }
  });

  it("reports unknown keys and invalid values, each value message prefixed by its key", () => {
    expect(
      validate({
        geo_fence: "EU",
        time_window: { after: "09:00", before: "09:00", timezone: "UTC" },
        ip_range: { cidrs: ["10.0.0.1/8"] },
        require_approval_above: "5",
      }),
    ).toEqual([
      'Unknown condition "geo_fence"',
      'time_window: "after" and "before" must differ (the window would be empty)',
      'ip_range: cidrs[0]: "10.0.0.1/8" has host bits set below /8',
      'require_approval_above: must be an object { amount: "<decimal>", currency? }',
    ]);
  });

  it("require_approval_above holds under the amount and asks above it, or when the spend is unknown", () => {
    const evaluate = (value: unknown, spentToday: string | null | undefined, cost?: string | null) =>
      requireApprovalAboveCondition.evaluate(value, { now: 0, principalId: "p", tenantId: "t", spentToday, cost });
    expect(evaluate({ amount: "10" }, "4", "6")).toBe(true);
    expect(evaluate({ amount: "10" }, "4", "6.000000000000000001")).toBe("ask");
    expect(evaluate({ amount: "10", currency: "USD" }, "12")).toBe("ask");
    expect(evaluate({ amount: "10" }, undefined)).toBe("ask");
    expect(evaluate({ amount: "10" }, "1", "-5")).toBe("ask");
    expect(evaluate({ amount: "ten" }, "1")).toBe(false);
    expect(requireApprovalAboveCondition.validate({ amount: "1", extra: true })).toMatch(/unknown field "extra"/);
  });

  it("an allow grant under require_approval_above becomes ask above the amount; deny stays deny", () => {
    const grant = (effect: "allow" | "deny"): GrantRule => ({
      id: `g-${effect}`,
      resource: "tool:pay",
      action: "invoke",
      effect,
      conditions: { require_approval_above: { amount: "5" } },
      expiresAt: null,
    });
    const ctx = (spentToday: string) => ({ now: 0, principalId: "p", tenantId: "t", spentToday });
    const decide = (g: GrantRule, spent: string) =>
      evaluateGrants([g], "tool:pay", "invoke", ctx(spent), defaultConditionRegistry).effect;
    expect(decide(grant("allow"), "1")).toBe("allow");
    expect(decide(grant("allow"), "9")).toBe("ask");
    expect(decide(grant("deny"), "9")).toBe("deny");
    const explained = explainGrants([grant("allow")], "tool:pay", "invoke", ctx("9"), defaultConditionRegistry);
    expect(explained.matching[0]).toMatchObject({ conditions: "ask", effective: "ask" });
  });

  it("turns a throwing validator into an issue instead of an error", () => {
    const throwing: ConditionEvaluator = {
      validate: () => {
        throw new Error("boom");
      },
      evaluate: () => false,
    };
    expect(validateConditions({ custom: 1 }, new Map([["custom", throwing]]))).toEqual([
      "custom: could not be validated",
    ]);
  });

  it("treats a __proto__ key from JSON as an unknown condition", () => {
    expect(validate(JSON.parse('{"__proto__": {"after": "x"}}'))).toEqual(['Unknown condition "__proto__"']);
  });
});
