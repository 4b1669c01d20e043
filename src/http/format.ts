/** Timestamps are integer milliseconds in D1 and ISO-8601 with milliseconds (UTC, `Z`) in the API. */
export function iso(date: Date): string {
  return date.toISOString();
}

export function isoOrNull(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}
