/**
 * How a Durable Object's RPC method reports a failure its caller must handle: as a value. An exception that
 * crosses RPC arrives as a plain Error with only its message, so an `ApiError` thrown inside the object is
 * caught at the method's edge (`rpcResult`) and rebuilt by the caller (`unwrap`) with its status and code.
 * Anything else thrown inside is a bug and stays an exception (a 500).
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError } from "../errors";

export type RpcFailure = { ok: false; status: ContentfulStatusCode; code: string; message: string };
export type RpcResult<T> = { ok: true; value: T } | RpcFailure;

/** Runs an RPC method's body; an `ApiError` it throws becomes the failure value. */
export async function rpcResult<T>(body: () => Promise<T>): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await body() };
  } catch (err) {
    if (err instanceof ApiError) return { ok: false, status: err.status, code: err.code, message: err.message };
    throw err;
  }
}

/** The value, or the failure thrown again as the `ApiError` it was. */
export function unwrap<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  throw new ApiError(result.status, result.code, result.message);
}

/** The instance's sidecar is not there to do what was asked (502). */
export const sidecarUnavailable = (message: string) => new ApiError(502, "sidecar_unavailable", message);
