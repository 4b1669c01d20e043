import * as openpgp from "openpgp";
import { describe, expect, it } from "vitest";
import { generateMailKey, keyFingerprint, loadPrivateKey, MailKeyError, signDetached, verifyDetached } from "./keys";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("mail keys", () => {
  it("generates a v4 EdDSA (Ed25519, algorithm 22) signing key with a matching fingerprint", async () => {
    const key = await generateMailKey("ins_abc@tenant.example");
    expect(key.privateKeyArmored).toContain("BEGIN PGP PRIVATE KEY BLOCK");
    expect(key.publicKeyArmored).toContain("BEGIN PGP PUBLIC KEY BLOCK");
    expect(key.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    const pub = await openpgp.readKey({ armoredKey: key.publicKeyArmored });
    expect(pub.isPrivate()).toBe(false);
    expect(pub.keyPacket.version).toBe(4);
    expect(pub.getAlgorithmInfo()).toMatchObject({ algorithm: "eddsaLegacy", curve: "ed25519Legacy" });
    expect((await pub.getPrimaryUser()).user.userID?.email).toBe("ins_abc@tenant.example");
    expect(await keyFingerprint(key.privateKeyArmored)).toBe(key.fingerprint);
  });

  it("signs detached binary signatures with SHA-512 that verify only for the signed bytes and key", async () => {
    const key = await generateMailKey("label without address");
    const other = await generateMailKey("other");
    const armored = await signDetached(key.privateKeyArmored, bytes("hello\r\n"));
    expect(armored).toContain("BEGIN PGP SIGNATURE");
    const sig = await openpgp.readSignature({ armoredSignature: armored });
    const packet = sig.packets[0];
    expect(packet?.signatureType).toBe(openpgp.enums.signature.binary);
    expect(packet?.hashAlgorithm).toBe(openpgp.enums.hash.sha512);
    expect(packet?.publicKeyAlgorithm).toBe(openpgp.enums.publicKey.eddsaLegacy);

    expect(await verifyDetached(bytes("hello\r\n"), armored, key.publicKeyArmored)).toEqual({ valid: true });
    expect((await verifyDetached(bytes("hello\n"), armored, key.publicKeyArmored)).valid).toBe(false);
    expect((await verifyDetached(bytes("hello\r\n"), armored, other.publicKeyArmored)).valid).toBe(false);
    expect(await verifyDetached(bytes("x"), "garbage", key.publicKeyArmored)).toEqual({
      valid: false,
      reason: "unreadable signature",
    });
  });

  it("refuses unreadable or passphrase-protected keys with a typed error", async () => {
    await expect(loadPrivateKey("not a key")).rejects.toBeInstanceOf(MailKeyError);
    const { privateKey } = await openpgp.generateKey({
      type: "ecc",
      curve: "ed25519Legacy",
      userIDs: [{ name: "x" }],
      passphrase: "secret",
    });
    await expect(loadPrivateKey(privateKey)).rejects.toThrow(/passphrase/);
  });
});
