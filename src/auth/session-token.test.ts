import { makeSignature } from "better-auth/crypto";
import { describe, expect, it } from "vitest";
import type { SessionSettings } from "./better-auth";
import { sessionTokenOf } from "./session-token";

const settings = (secret: string): SessionSettings => ({
  cookieName: "agent-hub.session_token",
  dontRememberCookieName: "agent-hub.dont_remember",
  secret,
  expiresInMs: 7 * 86_400_000,
  updateAgeMs: 86_400_000,
});
const bearer = (value: string) => new Headers({ authorization: `Bearer ${value}` });
const SECRET = "a test secret of more than thirty-two characters";

describe("sessionTokenOf with signed values", () => {
  it("takes a value better-auth signed, again and again, and only under its secret", async () => {
    const signed = `tok123.${await makeSignature("tok123", SECRET)}`;
    expect(await sessionTokenOf(bearer(signed), settings(SECRET))).toBe("tok123");
    expect(await sessionTokenOf(bearer(signed), settings(SECRET))).toBe("tok123");
    expect(await sessionTokenOf(bearer(signed), settings(`${SECRET} rotated`))).toBeNull();
    expect(await sessionTokenOf(bearer(signed), settings(SECRET))).toBe("tok123");
  });

  it("refuses another signature for a token it verified, and a non-canonical encoding of the right one", async () => {
    const signature = await makeSignature("tok456", SECRET);
    expect(await sessionTokenOf(bearer(`tok456.${signature}`), settings(SECRET))).toBe("tok456");
    const other = await makeSignature("someone-else", SECRET);
    expect(await sessionTokenOf(bearer(`tok456.${other}`), settings(SECRET))).toBeNull();
    // The last character's unused bits changed: the same bytes, but not the string better-auth writes.
    const last = signature.at(-2) as string;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] as string;
    expect(await sessionTokenOf(bearer(`tok456.${signature.slice(0, -2)}${sibling}=`), settings(SECRET))).toBeNull();
  });
});
