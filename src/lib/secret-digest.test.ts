import { describe, expect, it } from "vitest";
import { digestsEqual, randomSecret, sha256 } from "./secret-digest";

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

describe("secret digests", () => {
  it("generates prefixed base64url secrets with 256 bits of entropy, never twice the same", () => {
    const a = randomSecret("itx_pat_");
    const b = randomSecret("itx_pat_");
    expect(a).toMatch(/^itx_pat_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });

  it("hashes the UTF-8 bytes with SHA-256", async () => {
    expect(hex(await sha256("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("compares digests by content, whatever their length", async () => {
    const d = await sha256("secret");
    expect(digestsEqual(d, await sha256("secret"))).toBe(true);
    expect(digestsEqual(d, await sha256("secreT"))).toBe(false);
    expect(digestsEqual(d, d.slice(0, 31))).toBe(false);
    expect(digestsEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });
});
