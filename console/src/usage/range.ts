/** The time ranges the usage screen offers, and the bucket each is charted in. */

export type Bucket = "minute" | "hour" | "day";
export type RangeKey = "1h" | "24h" | "7d";

export const ranges: Record<RangeKey, { label: string; bucket: Bucket; count: number }> = {
  "1h": { label: "Last hour", bucket: "minute", count: 60 },
  "24h": { label: "Last 24 hours", bucket: "hour", count: 24 },
  "7d": { label: "Last 7 days", bucket: "day", count: 7 },
};

export function isRangeKey(value: string): value is RangeKey {
  return value in ranges;
}

/** The start of the bucket `at` falls in, in the reader's local time (days start at local midnight). */
function bucketStart(at: Date, bucket: Bucket): Date {
  const d = new Date(at);
  d.setSeconds(0, 0);
  if (bucket !== "minute") d.setMinutes(0);
  if (bucket === "day") d.setHours(0);
  return d;
}

function addBuckets(at: Date, bucket: Bucket, n: number): Date {
  const d = new Date(at);
  if (bucket === "minute") d.setMinutes(d.getMinutes() + n);
  else if (bucket === "hour") d.setHours(d.getHours() + n);
  else d.setDate(d.getDate() + n);
  return d;
}

/**
 * The window to ask for, computed afresh on every fetch: it ends at the end of the current bucket so that
 * the buckets fall on whole minutes / hours / days (the API starts them at `from`) and the last one is now.
 */
export function windowOf(key: RangeKey, now = new Date()): { from: string; to: string; bucket: Bucket } {
  const { bucket, count } = ranges[key];
  const to = addBuckets(bucketStart(now, bucket), bucket, 1);
  const from = addBuckets(to, bucket, -count);
  return { from: from.toISOString(), to: to.toISOString(), bucket };
}

/** A bucket's label on an axis: the time of day for minutes and hours, the date for days. */
export function tickLabel(start: string, bucket: Bucket): string {
  const d = new Date(start);
  return bucket === "day"
    ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" })
    : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** A bucket's full label, for tooltips and the data tables. */
export function bucketLabel(start: string, bucket: Bucket): string {
  const d = new Date(start);
  return bucket === "day"
    ? d.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" })
    : d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
