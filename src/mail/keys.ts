/**
 * Per-instance mail-signing keys (OpenPGP). The key type is a v4 EdDSA key on Ed25519 in the
 * "legacy" encoding (public-key algorithm 22), the one GnuPG 2.2/2.4, Thunderbird and openpgp.js all
 * verify; the RFC 9580 Ed25519 encoding (algorithm 27) is still unknown to GnuPG. Signatures use SHA-512
 * so the `micalg=pgp-sha512` of the MIME wrapper is true.
 *
 * Runs in workerd and in Node (openpgp only, no Node APIs).
 */
import * as openpgp from "openpgp";

export interface MailKey {
  privateKeyArmored: string;
  publicKeyArmored: string;
  /** Upper-case hex v4 fingerprint (40 characters). */
  fingerprint: string;
}

/** Thrown when armored key or signature text cannot be read. */
export class MailKeyError extends Error {
  override name = "MailKeyError";
}

const signingConfig = { preferredHashAlgorithm: openpgp.enums.hash.sha512 };

/**
 * A fresh signing-only key. `userIdLabel` becomes the user id: an address (`ins_…@tenant.example`) is
 * stored as the email, anything else as the name.
 */
export async function generateMailKey(userIdLabel: string): Promise<MailKey> {
  const label = userIdLabel.replace(/[\r\n<>]/g, " ").trim() || "mail";
  const userID = /^[^\s@]+@[^\s@]+$/.test(label) ? { email: label } : { name: label };
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: "ecc",
    curve: "ed25519Legacy",
    userIDs: [userID],
    subkeys: [],
    format: "object",
    config: signingConfig,
  });
  return {
    privateKeyArmored: privateKey.armor(),
    publicKeyArmored: publicKey.armor(),
    fingerprint: publicKey.getFingerprint().toUpperCase(),
  };
}

/** Reads an unencrypted armored private key. */
export async function loadPrivateKey(privateKeyArmored: string): Promise<openpgp.PrivateKey> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: privateKeyArmored });
  } catch (err) {
    throw new MailKeyError("Unreadable private key", { cause: err });
  }
  if (!key.isDecrypted()) throw new MailKeyError("Private key is passphrase-protected");
  return key;
}

/** Reads an armored public key (a private key is accepted and reduced to its public part). */
export async function loadPublicKey(publicKeyArmored: string): Promise<openpgp.PublicKey> {
  try {
    const key = await openpgp.readKey({ armoredKey: publicKeyArmored });
    return key.toPublic();
  } catch (err) {
    throw new MailKeyError("Unreadable public key", { cause: err });
  }
}

/** Upper-case hex fingerprint of an armored key. */
export async function keyFingerprint(armoredKey: string): Promise<string> {
  return (await loadPublicKey(armoredKey)).getFingerprint().toUpperCase();
}

/** An armored detached binary signature (type 0x00) over `content`, hashed with SHA-512. */
export async function signDetached(
  privateKey: string | openpgp.PrivateKey,
  content: Uint8Array,
  date: Date = new Date(),
): Promise<string> {
  const signingKeys = typeof privateKey === "string" ? await loadPrivateKey(privateKey) : privateKey;
  const message = await openpgp.createMessage({ binary: content });
  return openpgp.sign({ message, signingKeys, detached: true, format: "armored", date, config: signingConfig });
}

/**
 * A signer bound to one key, read once: the `sign` callback `buildUserMessage` takes.
 */
export async function mailSigner(privateKeyArmored: string): Promise<(content: Uint8Array) => Promise<string>> {
  const key = await loadPrivateKey(privateKeyArmored);
  return (content) => signDetached(key, content);
}

/** True when `armoredSignature` is a valid detached signature of `content` by the key. */
export async function verifyDetached(
  content: Uint8Array,
  armoredSignature: string,
  publicKey: string | openpgp.PublicKey,
): Promise<{ valid: boolean; reason?: string }> {
  const verificationKeys = typeof publicKey === "string" ? await loadPublicKey(publicKey) : publicKey;
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature });
  } catch {
    return { valid: false, reason: "unreadable signature" };
  }
  const message = await openpgp.createMessage({ binary: content });
  const result = await openpgp.verify({ message, signature, verificationKeys, format: "binary" });
  const first = result.signatures[0];
  if (!first) return { valid: false, reason: "no signature" };
  try {
    await first.verified;
    return { valid: true };
  } catch (err) {
    return { valid: false, reason: err instanceof Error ? err.message : "signature check failed" };
  }
}
