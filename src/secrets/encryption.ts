/**
 * Secrets at rest: AES-256-GCM through WebCrypto. The stored bytes are `iv (12) || ciphertext+tag`.
 *
 * The key is derived (HKDF-SHA-256) from the Worker secret `SECRETS_KEY`, so any sufficiently long random
 * string works as the secret (`wrangler secret put SECRETS_KEY`). Without it the hub uses a fixed, public
 * development key: fine for `wrangler dev` and tests, worthless in production.
 *
 * Every ciphertext is bound to where it is stored (`context`, e.g. `credential:<id>:secret`, used as
 * additional authenticated data), so a ciphertext copied into another row or column does not decrypt.
 */

/** Public on purpose: it only protects local development data. Set `SECRETS_KEY` in every deployment. */
export const DEVELOPMENT_SECRETS_KEY = "agent-hub-local-development-secrets-key-NOT-FOR-PRODUCTION";

const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_SALT = new TextEncoder().encode("agent-hub/secrets");
const HKDF_INFO = new TextEncoder().encode("aes-256-gcm v1");

export class SecretDecryptionError extends Error {
  constructor(message = "The secret could not be decrypted (wrong key, tampered or misplaced ciphertext)") {
    super(message);
    this.name = "SecretDecryptionError";
  }
}

export type SecretBox = {
  encrypt(plaintext: string, context: string): Promise<Uint8Array>;
  decrypt(stored: Uint8Array, context: string): Promise<string>;
};

// Derived once per isolate (per distinct secret), not per request.
const keys = new Map<string, Promise<CryptoKey>>();

function deriveKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: HKDF_INFO },
          material,
          { name: "AES-GCM", length: 256 },
          false,
          ["encrypt", "decrypt"],
        ),
      );
    keys.set(secret, key);
  }
  return key;
}

/** A box over the key from `secret` (the `SECRETS_KEY` value, or the development default when unset). */
export function secretBoxFor(secret: string | undefined): SecretBox {
  const keySource = secret && secret.length > 0 ? secret : DEVELOPMENT_SECRETS_KEY;
  return {
    async encrypt(plaintext, context) {
      const key = await deriveKey(keySource);
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const sealed = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) },
        key,
        new TextEncoder().encode(plaintext),
      );
      const out = new Uint8Array(IV_BYTES + sealed.byteLength);
      out.set(iv, 0);
      out.set(new Uint8Array(sealed), IV_BYTES);
      return out;
    },
    async decrypt(stored, context) {
      if (stored.byteLength < IV_BYTES + TAG_BYTES) throw new SecretDecryptionError("The stored secret is truncated");
      const key = await deriveKey(keySource);
      let opened: ArrayBuffer;
      try {
        opened = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: stored.slice(0, IV_BYTES), additionalData: new TextEncoder().encode(context) },
          key,
          stored.slice(IV_BYTES),
        );
      } catch {
        throw new SecretDecryptionError();
      }
      return new TextDecoder().decode(opened);
    },
  };
}

/** The box of a Worker environment (`SECRETS_KEY`, or the development default). */
export function secretBox(env: Env): SecretBox {
  return secretBoxFor(env.SECRETS_KEY);
}

/** Where each kind of secret is stored; the AAD binding a ciphertext to its row and column. */
export const secretContext = {
  credentialSecret: (credentialId: string) => `credential:${credentialId}:secret`,
  credentialRefreshSecret: (credentialId: string) => `credential:${credentialId}:refresh_secret`,
  oauthClientSecret: (oauthClientId: string) => `oauth_client:${oauthClientId}:client_secret`,
} as const;
