/**
 * The session token a request carries, checked as better-auth checks it but without its database lookups:
 * `Authorization: Bearer` first (its bearer plugin takes a bare token as it is, and a signed one only when
 * the signature holds), else the signed session cookie. A signed value is `<token>.<signature>`, the
 * signature being base64 HMAC-SHA-256 of the token under the auth secret.
 */
import { parse } from "hono/utils/cookie";
import { base64ToBytes, bytesToBase64 } from "../lib/base64";
import { BoundedMap } from "../lib/bounded-map";
import type { SessionSettings } from "./better-auth";

const BEARER = "bearer ";

function tryDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The key of the secret in use, and the signed values it verified: importing the key costs as much as a
 * signature, and a session sends the same signed value on every request. Only values whose signature held
 * are kept, so a forged one is checked every time.
 */
type Signer = { secret: string; key: Promise<CryptoKey>; verified: BoundedMap<string, string> };
let signer: Signer | undefined;
const MAX_VERIFIED = 1000;

function signerOf(secret: string): Signer {
  if (signer?.secret !== secret) {
    const raw = new TextEncoder().encode(secret);
    const key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    signer = { secret, key, verified: new BoundedMap(MAX_VERIFIED) };
  }
  return signer;
}

/** HMAC-SHA-256 in standard base64, as better-auth writes it. */
const SIGNATURE = /^[A-Za-z0-9+/]{43}=$/;

/** The token of a signed value, or null unless the signature is the token's. Tokens have no dot. */
async function unsign(value: string, secret: string): Promise<string | null> {
  const { key, verified } = signerOf(secret);
  const known = verified.get(value);
  if (known !== undefined) return known;
  const dot = value.indexOf(".");
  const signature = value.slice(dot + 1);
  if (dot < 1 || !SIGNATURE.test(signature)) return null;
  const token = value.slice(0, dot);
  const mac = base64ToBytes(signature);
  // Only the canonical encoding, as better-auth compares the strings.
  if (bytesToBase64(mac) !== signature) return null;
  if (!(await crypto.subtle.verify("HMAC", await key, mac, new TextEncoder().encode(token)))) return null;
  verified.set(value, token);
  return token;
}

/** The bearer value of `Authorization`, or null without one (any scheme's case). */
export function bearerOf(authorization: string | null): string | null {
  if (!authorization || authorization.slice(0, BEARER.length).toLowerCase() !== BEARER) return null;
  return authorization.slice(BEARER.length).trim() || null;
}

/** The value of a signed cookie, or null when it is absent or its signature fails. */
async function signedCookieOf(headers: Headers, name: string, secret: string): Promise<string | null> {
  const cookie = headers.get("cookie");
  const value = cookie ? parse(cookie, name)[name] : undefined;
  return value ? unsign(value, secret) : null;
}

export async function sessionTokenOf(headers: Headers, settings: SessionSettings): Promise<string | null> {
  const bearer = bearerOf(headers.get("authorization"));
  if (bearer && !bearer.includes(".")) return bearer;
  const signedBearer = bearer ? await unsign(bearer.includes("%") ? tryDecode(bearer) : bearer, settings.secret) : null;
  if (signedBearer) return signedBearer;
  // A bearer whose signature fails falls back to the cookie, as in better-auth.
  return signedCookieOf(headers, settings.cookieName, settings.secret);
}

/** better-auth's signed "don't remember me" cookie: such a session is never refreshed, it just ends. */
export async function isDontRemember(headers: Headers, settings: SessionSettings): Promise<boolean> {
  return (await signedCookieOf(headers, settings.dontRememberCookieName, settings.secret)) !== null;
}
