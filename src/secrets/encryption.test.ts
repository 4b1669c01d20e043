import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEVELOPMENT_SECRETS_KEY, SecretDecryptionError, secretBox, secretBoxFor } from "./encryption";

const box = secretBoxFor("test-key-0123456789abcdef0123456789abcdef");

describe("secret encryption", () => {
  it("round-trips, unicode and empty strings included", async () => {
    for (const plaintext of ["sk-live-abc123", "", "clé secrète 🔑", "x".repeat(10_000)]) {
      const sealed = await box.encrypt(plaintext, "credential:crd_1:secret");
      expect(await box.decrypt(sealed, "credential:crd_1:secret")).toBe(plaintext);
    }
  });

  it("stores iv || ciphertext || tag, with a fresh IV each time and no plaintext", async () => {
    const plaintext = "sk-live-same-plaintext";
    const a = await box.encrypt(plaintext, "ctx");
    const b = await box.encrypt(plaintext, "ctx");
    expect(a.byteLength).toBe(12 + new TextEncoder().encode(plaintext).byteLength + 16);
    expect(Array.from(a.slice(0, 12))).not.toEqual(Array.from(b.slice(0, 12)));
    expect(Array.from(a)).not.toEqual(Array.from(b));
    expect(new TextDecoder().decode(a)).not.toContain("same-plaintext");
  });

  it("refuses a tampered ciphertext, IV or tag", async () => {
    const sealed = await box.encrypt("sk-live-abc123", "ctx");
    for (const index of [0, 11, 12, sealed.byteLength - 1]) {
      const tampered = sealed.slice();
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      await expect(box.decrypt(tampered, "ctx")).rejects.toBeInstanceOf(SecretDecryptionError);
    }
    await expect(box.decrypt(sealed.slice(0, 20), "ctx")).rejects.toBeInstanceOf(SecretDecryptionError);
  });

  it("binds a ciphertext to its place and its key", async () => {
    const sealed = await box.encrypt("sk-live-abc123", "credential:crd_a:secret");
    await expect(box.decrypt(sealed, "credential:crd_b:secret")).rejects.toBeInstanceOf(SecretDecryptionError);
    const otherKey = secretBoxFor("another-key-0123456789abcdef0123456789");
    await expect(otherKey.decrypt(sealed, "credential:crd_a:secret")).rejects.toBeInstanceOf(SecretDecryptionError);
  });

  it("falls back to the development key when SECRETS_KEY is unset or empty", async () => {
    const sealed = await secretBoxFor(undefined).encrypt("dev", "ctx");
    expect(await secretBoxFor(DEVELOPMENT_SECRETS_KEY).decrypt(sealed, "ctx")).toBe("dev");
    expect(await secretBoxFor("").decrypt(sealed, "ctx")).toBe("dev");
    await expect(box.decrypt(sealed, "ctx")).rejects.toBeInstanceOf(SecretDecryptionError);
    // The test Worker has no SECRETS_KEY, so its box is the development one too.
    expect(await secretBox(env).decrypt(sealed, "ctx")).toBe("dev");
  });
});
