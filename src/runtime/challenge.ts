/**
 * The reconnect challenge: a sidecar that comes back for an instance proves it holds the instance's key by
 * signing a fresh nonce from the hub. The signed message is the nonce's bytes followed by the UTF-8 agent
 * address, so a signature for one instance cannot be replayed for another. Shared by the hub and the
 * reference sidecar.
 */
import { bytesToHex, hexToBytes } from "../lib/hex";

const HEX = /^(?:[0-9a-f]{2})+$/i;

/** 32 random bytes, hex: a nonce is never reused. */
export function newChallengeNonce(): string {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
}

/** What the sidecar signs: bytes(nonce) ‖ utf8(agentAddress). */
export function challengeMessage(nonceHex: string, agentAddress: string): Uint8Array {
  const nonce = hexToBytes(nonceHex);
  const address = new TextEncoder().encode(agentAddress);
  const message = new Uint8Array(nonce.length + address.length);
  message.set(nonce, 0);
  message.set(address, nonce.length);
  return message;
}

/** Whether `signatureHex` is the Ed25519 signature of the challenge under `publicKeyHex` (raw 32 bytes). */
export async function verifyChallenge(
  publicKeyHex: string,
  nonceHex: string,
  agentAddress: string,
  signatureHex: string,
): Promise<boolean> {
  if (!HEX.test(publicKeyHex) || !HEX.test(nonceHex) || !HEX.test(signatureHex) || signatureHex.length !== 128) {
    return false;
  }
  try {
    const key = await crypto.subtle.importKey("raw", hexToBytes(publicKeyHex), { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify(
      { name: "Ed25519" },
      key,
      hexToBytes(signatureHex),
      challengeMessage(nonceHex, agentAddress),
    );
  } catch {
    return false;
  }
}
