import { describe, expect, it } from "vitest";
import { bytesToHex } from "../lib/hex";
import { challengeMessage, newChallengeNonce, verifyChallenge } from "./challenge";

async function keyPair() {
  const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = bytesToHex(new Uint8Array((await crypto.subtle.exportKey("raw", keys.publicKey)) as ArrayBuffer));
  const sign = async (message: Uint8Array) =>
    bytesToHex(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, keys.privateKey, message)));
  return { publicKey, sign };
}

describe("reconnect challenge", () => {
  it("signs the nonce's bytes followed by the UTF-8 address", () => {
    expect([...challengeMessage("00ff10", "a@b")]).toEqual([0x00, 0xff, 0x10, 0x61, 0x40, 0x62]);
    expect(newChallengeNonce()).toMatch(/^[0-9a-f]{64}$/);
    expect(newChallengeNonce()).not.toBe(newChallengeNonce());
  });

  it("accepts the instance key's signature and nothing else", async () => {
    const { publicKey, sign } = await keyPair();
    const other = await keyPair();
    const nonce = newChallengeNonce();
    const address = "ins_1@tenant.example";
    const signature = await sign(challengeMessage(nonce, address));
    expect(await verifyChallenge(publicKey, nonce, address, signature)).toBe(true);
    // Another nonce, another instance's address, another key: refused.
    expect(await verifyChallenge(publicKey, newChallengeNonce(), address, signature)).toBe(false);
    expect(await verifyChallenge(publicKey, nonce, "ins_2@tenant.example", signature)).toBe(false);
    expect(await verifyChallenge(other.publicKey, nonce, address, signature)).toBe(false);
  });

  it("refuses malformed input without throwing", async () => {
    const { publicKey } = await keyPair();
    const nonce = newChallengeNonce();
    for (const signature of ["", "zz".repeat(64), "ab".repeat(63), "ab".repeat(65), "ab".repeat(64)]) {
      expect(await verifyChallenge(publicKey, nonce, "a@b", signature)).toBe(false);
    }
    expect(await verifyChallenge("abcd", nonce, "a@b", "ab".repeat(64))).toBe(false);
    expect(await verifyChallenge(publicKey, "xyz", "a@b", "ab".repeat(64))).toBe(false);
  });
});
