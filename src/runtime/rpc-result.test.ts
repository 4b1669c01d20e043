import { describe, expect, it } from "vitest";
import { ApiError, conflict } from "../errors";
import { rpcResult, sidecarUnavailable, unwrap } from "./rpc-result";

describe("RPC results", () => {
  it("carries a value through", async () => {
    const result = await rpcResult(async () => 42);
    expect(result).toEqual({ ok: true, value: 42 });
    expect(unwrap(result)).toBe(42);
  });

  it("turns an ApiError into a plain value and back, status and code intact", async () => {
    const result = await rpcResult(async () => {
      throw sidecarUnavailable("The sidecar is not connected");
    });
    // Plain data: what structured clone carries across RPC.
    expect(result).toEqual({
      ok: false,
      status: 502,
      code: "sidecar_unavailable",
      message: "The sidecar is not connected",
    });
    expect(() => unwrap(result)).toThrow(ApiError);
    const failed = await rpcResult(async () => {
      throw conflict("Instance is already stopped");
    });
    try {
      unwrap(failed);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ status: 409, code: "conflict", message: "Instance is already stopped" });
    }
  });

  it("lets any other error through: a bug is not a failure value", async () => {
    await expect(
      rpcResult(async () => {
        throw new TypeError("undefined is not a function");
      }),
    ).rejects.toThrow(TypeError);
  });
});
