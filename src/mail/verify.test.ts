import { beforeAll, describe, expect, it } from "vitest";
import { buildUserMessage, type UserMessageInput } from "./build";
import { generateMailKey, type MailKey, MailKeyError, mailSigner } from "./keys";
import { verifySignedMessage } from "./verify";

let key: MailKey;
let other: MailKey;
beforeAll(async () => {
  key = await generateMailKey("ins_1@acme.example");
  other = await generateMailKey("ins_2@acme.example");
});

async function signedMessage(overrides: Partial<UserMessageInput> = {}): Promise<Uint8Array> {
  return buildUserMessage({
    from: { name: "Ada", email: "usr_1@acme.example" },
    to: { email: "ins_1@acme.example" },
    text: "hello agent",
    messageId: "sml_1@acme.example",
    date: new Date("2026-11-25T12:45:50Z"),
    headers: { "Interchange-Type": "conversation.message" },
    sign: await mailSigner(key.privateKeyArmored),
    ...overrides,
  });
}

const latin = (b: Uint8Array) => Array.from(b, (c) => String.fromCharCode(c)).join("");
const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe("verifySignedMessage", () => {
  it("accepts what buildUserMessage signed, for ASCII and quoted-printable text", async () => {
    expect(await verifySignedMessage(await signedMessage(), key.publicKeyArmored)).toEqual({ valid: true });
    const unicode = await signedMessage({ text: `Grüße ✓\nFrom me\n${"y".repeat(200)}` });
    expect(await verifySignedMessage(unicode, key.publicKeyArmored)).toEqual({ valid: true });
  });

  it("rejects a message whose text was changed by one byte", async () => {
    const raw = await signedMessage();
    const s = latin(raw);
    const at = s.indexOf("hello agent");
    const tampered = raw.slice();
    tampered[at] = "j".charCodeAt(0);
    const result = await verifySignedMessage(tampered, key.publicKeyArmored);
    expect(result.valid).toBe(false);
    expect(result.reason).toBeTruthy();
  });

  it("rejects a changed part header (the signature covers part 1's headers too)", async () => {
    const s = latin(await signedMessage());
    const tampered = s.replace("Content-Transfer-Encoding: 7bit", "Content-Transfer-Encoding: 8bit");
    expect(tampered).not.toBe(s);
    expect((await verifySignedMessage(bytesOf(tampered), key.publicKeyArmored)).valid).toBe(false);
  });

  it("rejects another instance's key", async () => {
    expect((await verifySignedMessage(await signedMessage(), other.publicKeyArmored)).valid).toBe(false);
  });

  it("still verifies after a relay turned CRLF into LF (canonical form is checked)", async () => {
    const lf = latin(await signedMessage({ text: "two\nlines" })).replace(/\r\n/g, "\n");
    expect(await verifySignedMessage(bytesOf(lf), key.publicKeyArmored)).toEqual({ valid: true });
  });

  it("reports unsigned or malformed mail as invalid, and an unreadable key as an error", async () => {
    const plain = bytesOf("From: a@b\r\nContent-Type: text/plain\r\n\r\nhi");
    expect(await verifySignedMessage(plain, key.publicKeyArmored)).toEqual({
      valid: false,
      reason: "not an OpenPGP/MIME signed message",
    });
    const s = latin(await signedMessage());
    const boundary = /boundary="([^"]+)"/.exec(s)?.[1] as string;
    const second = s.indexOf(`--${boundary}`, s.indexOf(`--${boundary}`) + 1);
    const cut = s.slice(0, second);
    expect((await verifySignedMessage(bytesOf(cut), key.publicKeyArmored)).valid).toBe(false);
    await expect(verifySignedMessage(plain, "nope")).rejects.toBeInstanceOf(MailKeyError);
  });
});
