import { describe, expect, it } from "vitest";
import { ApiError } from "../errors";
import { decodeCursor, encodeCursor } from "./pagination";

describe("cursor encoding", () => {
  it("round-trips a (time, id) key", () => {
    const key = { t: 1764000000123, id: "tnt_0123456789abcdef0123456789abcdef" };
    const encoded = encodeCursor(key);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(encoded)).toEqual(key);
  });

  const b64 = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  it.each([
    ["empty", ""],
    ["not base64url", "abc$%^"],
    ["base64 of non-JSON", b64("hello")],
    ["JSON array", b64("[1,2]")],
    ["JSON null", b64("null")],
    ["missing id", b64('{"t":1}')],
    ["missing time", b64('{"id":"x"}')],
    ["time as ISO string", b64('{"t":"2026-01-01T00:00:00.000Z","id":"x"}')],
    ["fractional time", b64('{"t":1.5,"id":"x"}')],
    ["negative time", b64('{"t":-1,"id":"x"}')],
    ["empty id", b64('{"t":1,"id":""}')],
    ["invalid UTF-8", b64("\xff\xfe\xfd")],
  ])("rejects %s with invalid_cursor", (_name, raw) => {
    try {
      decodeCursor(raw);
      expect.unreachable("decodeCursor accepted a bad cursor");
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      expect((err as ApiError).code).toBe("invalid_cursor");
    }
  });
});
