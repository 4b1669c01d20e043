/**
 * The one error type of the git protocol layer. `message` is safe to show to a git client (it names the
 * protocol fault, never internal state); routes send it as an `ERR` pkt-line or a 400, never a 500.
 */
export type ProtocolErrorCode =
  | "malformed_pkt_line"
  | "invalid_request"
  | "unsupported"
  | "body_too_large"
  | "bad_encoding";

export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
