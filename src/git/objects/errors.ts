/**
 * Malformed git data (object, delta, pack or index). The only error the git parsers throw on bad input, so
 * callers can turn it into a client error (e.g. a rejected push) and treat anything else as a bug.
 */
export class GitFormatError extends Error {
  override readonly name = "GitFormatError";
}

/** Runs `fn`, turning any non-GitFormatError (zlib, RangeError from a bad length…) into a GitFormatError. */
export function asFormatError<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof GitFormatError) throw error;
    throw new GitFormatError(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
