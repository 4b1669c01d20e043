/**
 * The hub's own Ed25519 key: it signs the commits the hub writes (the genesis commit of every repository)
 * and is sent to sidecars as `hubPublicKey` so they can check them.
 *
 * The key is derived from the Worker secret `SECRETS_KEY` (HKDF, its own label), so every isolate and
 * every restart agree on it without storing a private key anywhere; rotating `SECRETS_KEY` rotates it.
 */
import { base64ToBytes } from "../lib/base64";
import { DEVELOPMENT_SECRETS_KEY } from "./encryption";

export type HubSigningKey = {
  privateKey: CryptoKey;
  /** The raw 32-byte public key. */
  publicKey: Uint8Array;
};

const HKDF_SALT = new TextEncoder().encode("agent-hub/secrets");
const HKDF_INFO = new TextEncoder().encode("ed25519 hub signing key v1");
/** PKCS#8 wrapping of an Ed25519 seed (RFC 8410): the DER prefix, then the 32 seed bytes. */
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

const derived = new Map<string, Promise<HubSigningKey>>();

async function derive(secret: string): Promise<HubSigningKey> {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, [
    "deriveBits",
  ]);
  const seed = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: HKDF_INFO }, material, 256),
  );
  const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + seed.length);
  pkcs8.set(PKCS8_ED25519_PREFIX, 0);
  pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
  // Extractable only to read the public half (`x`) from the JWK; the key object never leaves this module.
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = (await crypto.subtle.exportKey("jwk", privateKey)) as JsonWebKey;
  if (!jwk.x) throw new Error("Ed25519 key export did not include the public key");
  return { privateKey, publicKey: base64ToBytes(jwk.x) };
}

/** The hub key for `secret` (the `SECRETS_KEY` value, or the development default when unset). */
export function hubSigningKey(secret: string | undefined): Promise<HubSigningKey> {
  const source = secret && secret.length > 0 ? secret : DEVELOPMENT_SECRETS_KEY;
  let key = derived.get(source);
  if (!key) {
    key = derive(source);
    derived.set(source, key);
  }
  return key;
}
