/**
 * Grant conditions: the default registry (time_window, ip_range, max_spend_per_day, require_approval_above) and
 * write-time validation.
 * Each evaluator parses its value with the same function in validate() and evaluate(), so a value accepted at
 * grant creation is exactly a value the evaluator understands, and evaluate() fails closed on anything else.
 */
import { tryToUnits } from "../lib/decimal";
import type { ConditionEvaluator, ConditionRegistry, RequestContext } from "./types";

/** A parsed value, or the human reason it is malformed. */
type Checked<T> = T | string;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Rejects unknown fields so that a typo ("befor") is an error at creation, not a silently different rule. */
function unknownField(value: Record<string, unknown>, allowed: readonly string[]): string | null {
  const extra = Object.keys(value).find((key) => !allowed.includes(key));
  return extra === undefined ? null : `unknown field "${extra}" (allowed: ${allowed.join(", ")})`;
}

/** An evaluator whose validate/evaluate both go through `parse`, so they can never disagree. */
function conditionFrom<T>(
  parse: (value: unknown) => Checked<T>,
  holds: (parsed: T, ctx: RequestContext) => boolean,
): ConditionEvaluator {
  return {
    validate(value) {
      const parsed = parse(value);
      return typeof parsed === "string" ? parsed : null;
    },
    evaluate(value, ctx) {
      const parsed = parse(value);
      return typeof parsed !== "string" && holds(parsed, ctx);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// time_window: { after: "HH:MM", before: "HH:MM", timezone: IANA }, wall clock in [after, before).

interface TimeWindow {
  after: number;
  before: number;
  formatter: Intl.DateTimeFormat;
}

const CLOCK_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;
/** Bounds the formatter cache; time zone names are few, so this only trips on junk input. */
const MAX_CACHED_TIME_ZONES = 512;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Minutes since midnight, or null when not "HH:MM" on a 24-hour clock. */
function parseClockTime(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const match = CLOCK_TIME.exec(value);
  return match ? Number(match[1]) * 60 + Number(match[2]) : null;
}

/** A cached formatter giving the wall-clock hour (00-23) and minute in `timeZone`; null for an unknown zone. */
function clockFormatter(timeZone: string): Intl.DateTimeFormat | null {
  const cached = formatters.get(timeZone);
  if (cached) return cached;
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", hour: "2-digit", minute: "2-digit" });
  } catch {
    return null;
  }
  if (formatters.size >= MAX_CACHED_TIME_ZONES) formatters.clear();
  formatters.set(timeZone, formatter);
  return formatter;
}

function minutesOfDay(formatter: Intl.DateTimeFormat, now: number): number {
  let hour = 0;
  let minute = 0;
  for (const part of formatter.formatToParts(now)) {
    if (part.type === "hour") hour = Number(part.value);
    else if (part.type === "minute") minute = Number(part.value);
  }
  return hour * 60 + minute;
}

function parseTimeWindow(value: unknown): Checked<TimeWindow> {
  if (!isPlainObject(value)) return 'must be an object { after: "HH:MM", before: "HH:MM", timezone }';
  const extra = unknownField(value, ["after", "before", "timezone"]);
  if (extra) return extra;
  const after = parseClockTime(value.after);
  if (after === null) return '"after" must be a time "HH:MM" (00:00 to 23:59)';
  const before = parseClockTime(value.before);
  if (before === null) return '"before" must be a time "HH:MM" (00:00 to 23:59)';
  if (after === before) return '"after" and "before" must differ (the window would be empty)';
  const { timezone } = value;
  if (typeof timezone !== "string" || timezone === "") return '"timezone" must be an IANA time zone name';
  const formatter = clockFormatter(timezone);
  if (!formatter) return `"timezone" ${JSON.stringify(timezone.slice(0, 64))} is not a known time zone`;
  return { after, before, formatter };
}

function insideTimeWindow(window: TimeWindow, ctx: RequestContext): boolean {
  const minutes = minutesOfDay(window.formatter, ctx.now);
  // after > before wraps past midnight, e.g. 22:00-06:00.
  return window.after < window.before
    ? minutes >= window.after && minutes < window.before
    : minutes >= window.after || minutes < window.before;
}

export const timeWindowCondition: ConditionEvaluator = conditionFrom(parseTimeWindow, insideTimeWindow);

// ---------------------------------------------------------------------------------------------------------
// ip_range: { cidrs: string[] }, met when the client IP is inside any range.
// Every address is a 128-bit BigInt; IPv4 lives in the IPv4-mapped block ::ffff:0:0/96, so "1.2.3.4" and
// "::ffff:1.2.3.4" are the same address and one comparison serves both families.

const IPV4_MAPPED_PREFIX = 0xffffn << 32n;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const DECIMAL_OCTET = /^(0|[1-9]\d{0,2})$/;
const PREFIX_LENGTH = /^(0|[1-9]\d{0,2})$/;
const MAX_CIDRS = 256;

interface IpRange {
  /** Address bits below the prefix, dropped by shifting right. */
  shift: bigint;
  /** The network's address shifted right by `shift`. */
  network: bigint;
}

/** Dotted quad with no leading zeros (which some parsers read as octal), as a 32-bit number. */
function parseIPv4(text: string): number | null {
  const octets = text.split(".");
  if (octets.length !== 4) return null;
  let address = 0;
  for (const octet of octets) {
    if (!DECIMAL_OCTET.test(octet)) return null;
    const value = Number(octet);
    if (value > 255) return null;
    address = address * 256 + value;
  }
  return address;
}

/** Colon-separated hex groups, optionally ending with a dotted quad (which fills two groups). */
function parseGroups(section: string, mayEndWithIPv4: boolean): number[] | null {
  if (section === "") return [];
  const parts = section.split(":");
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? "";
    if (mayEndWithIPv4 && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIPv4(part);
      if (v4 === null) return null;
      groups.push(Math.floor(v4 / 0x10000), v4 % 0x10000);
    } else if (HEX_GROUP.test(part)) {
      groups.push(Number.parseInt(part, 16));
    } else {
      return null;
    }
  }
  return groups;
}

/** RFC 4291 text form: eight groups, or fewer around a single "::" standing for one or more zero groups. */
function parseIPv6(text: string): bigint | null {
  const gap = text.indexOf("::");
  if (gap >= 0 && text.indexOf("::", gap + 1) >= 0) return null;
  const head = parseGroups(gap < 0 ? text : text.slice(0, gap), gap < 0);
  const tail = gap < 0 ? [] : parseGroups(text.slice(gap + 2), true);
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (gap < 0 ? missing !== 0 : missing < 1) return null;
  let address = 0n;
  for (const group of [...head, ...new Array<number>(gap < 0 ? 0 : missing).fill(0), ...tail]) {
    address = (address << 16n) | BigInt(group);
  }
  return address;
}

/** An IPv4 or IPv6 address as a 128-bit number (IPv4 mapped into ::ffff:0:0/96); null when unparsable. */
export function parseIpAddress(text: string): bigint | null {
  if (text.includes(":")) return parseIPv6(text);
  const v4 = parseIPv4(text);
  return v4 === null ? null : IPV4_MAPPED_PREFIX | BigInt(v4);
}

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Host bits must be zero. */
function parseCidr(text: string): Checked<IpRange> {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const isV6 = addressText.includes(":");
  const bits = isV6 ? 128 : 32;
  const address = parseIpAddress(addressText);
  if (address === null) return `${JSON.stringify(text.slice(0, 64))} is not an IPv4 or IPv6 address or CIDR`;
  let prefix = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!PREFIX_LENGTH.test(prefixText) || Number(prefixText) > bits) {
      return `${JSON.stringify(text.slice(0, 64))} has a prefix length outside 0-${bits}`;
    }
    prefix = Number(prefixText);
  }
  const shift = BigInt(bits - prefix);
  const network = address >> shift;
  if (network << shift !== address) return `${JSON.stringify(text.slice(0, 64))} has host bits set below /${prefix}`;
  return { shift, network };
}

function parseIpRanges(value: unknown): Checked<IpRange[]> {
  if (!isPlainObject(value)) return "must be an object { cidrs: string[] }";
  const extra = unknownField(value, ["cidrs"]);
  if (extra) return extra;
  const { cidrs } = value;
  if (!Array.isArray(cidrs) || cidrs.length === 0) return '"cidrs" must be a non-empty array of CIDR strings';
  if (cidrs.length > MAX_CIDRS) return `"cidrs" may hold at most ${MAX_CIDRS} entries`;
  const ranges: IpRange[] = [];
  for (const [index, cidr] of cidrs.entries()) {
    const range = typeof cidr === "string" ? parseCidr(cidr) : "must be a string";
    if (typeof range === "string") return `cidrs[${index}]: ${range}`;
    ranges.push(range);
  }
  return ranges;
}

function clientInRanges(ranges: IpRange[], ctx: RequestContext): boolean {
  if (typeof ctx.ip !== "string") return false;
  const address = parseIpAddress(ctx.ip);
  if (address === null) return false;
  return ranges.some((range) => address >> range.shift === range.network);
}

export const ipRangeCondition: ConditionEvaluator = conditionFrom(parseIpRanges, clientInRanges);

// ---------------------------------------------------------------------------------------------------------
// max_spend_per_day: { amount: "<decimal>", currency?: string }, met when spentToday + cost <= amount.
// The currency is descriptive: the context carries amounts in the principal's wallet currency.

interface SpendLimit {
  amount: bigint;
}

const CURRENCY = /^[A-Za-z0-9._-]{1,16}$/;

function parseSpendLimit(value: unknown): Checked<SpendLimit> {
  if (!isPlainObject(value)) return 'must be an object { amount: "<decimal>", currency? }';
  const extra = unknownField(value, ["amount", "currency"]);
  if (extra) return extra;
  const amount = tryToUnits(value.amount);
  if (amount === null) return '"amount" must be a decimal string such as "12.50"';
  if (amount < 0n) return '"amount" must not be negative';
  const { currency } = value;
  if (currency !== undefined && (typeof currency !== "string" || !CURRENCY.test(currency))) {
    return '"currency" must be a code of 1-16 letters, digits, ".", "_" or "-"';
  }
  return { amount };
}

/** Unknown or malformed spending data fails closed; a negative cost is malformed (it would raise the limit). */
function withinSpendLimit(limit: SpendLimit, ctx: RequestContext): boolean {
  const spent = tryToUnits(ctx.spentToday);
  const cost = ctx.cost === null || ctx.cost === undefined ? 0n : tryToUnits(ctx.cost);
  if (spent === null || cost === null || cost < 0n) return false;
  return spent + cost <= limit.amount;
}

export const maxSpendPerDayCondition: ConditionEvaluator = conditionFrom(parseSpendLimit, withinSpendLimit);

// require_approval_above: { amount: "<decimal>", currency?: string }. Holds while spentToday + cost stays at or
// under the amount; above it, it holds only with a person's approval (an allow grant asks instead). Unknown
// spending data asks too: approval is the safe answer, not a refusal.

export const requireApprovalAboveCondition: ConditionEvaluator = {
  validate(value) {
    const parsed = parseSpendLimit(value);
    return typeof parsed === "string" ? parsed : null;
  },
  evaluate(value, ctx) {
    const parsed = parseSpendLimit(value);
    if (typeof parsed === "string") return false;
    return withinSpendLimit(parsed, ctx) ? true : "ask";
  },
};

// ---------------------------------------------------------------------------------------------------------

export const defaultConditionRegistry: ConditionRegistry = new Map<string, ConditionEvaluator>([
  ["time_window", timeWindowCondition],
  ["ip_range", ipRangeCondition],
  ["max_spend_per_day", maxSpendPerDayCondition],
  ["require_approval_above", requireApprovalAboveCondition],
]);

/** Issues that make `conditions` unacceptable on a new grant; empty when valid. null means unconditional. */
export function validateConditions(conditions: unknown, registry: ConditionRegistry): string[] {
  if (conditions === null) return [];
  if (!isPlainObject(conditions)) return ["Conditions must be an object or null"];
  const issues: string[] = [];
  for (const [key, value] of Object.entries(conditions)) {
    const evaluator = registry.get(key);
    const issue = evaluator ? safeValidate(evaluator, value) : `Unknown condition "${key}"`;
    if (issue !== null) issues.push(evaluator ? `${key}: ${issue}` : issue);
  }
  return issues;
}

/** validate() with a throw turned into an issue, so a faulty evaluator rejects rather than crashes. */
export function safeValidate(evaluator: ConditionEvaluator, value: unknown): string | null {
  try {
    return evaluator.validate(value);
  } catch {
    return "could not be validated";
  }
}
