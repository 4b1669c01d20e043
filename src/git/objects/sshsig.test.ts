import { describe, expect, it } from "vitest";
import { hubSigningKey } from "../../secrets/hub-signing-key";
import { buildGenesisPack, HUB_IDENTITY, serializeSignedCommit } from "../service/genesis";
import { hashObject, parseCommit, serializeCommit } from "./object";
import { SshSignatureError, sshPublicKeyLine, sshSign, sshVerify } from "./sshsig";

const message = new TextEncoder().encode("tree 0000\n\nhello\n");

describe("SSH signatures", () => {
  it("signs in the armored SSHSIG format and verifies with the same key only", async () => {
    const key = await hubSigningKey("a test secret that is long enough");
    const other = await hubSigningKey("another test secret, also long enough");
    const armored = await sshSign(message, key);
    const lines = armored.split("\n");
    expect(lines[0]).toBe("-----BEGIN SSH SIGNATURE-----");
    expect(lines.at(-1)).toBe("-----END SSH SIGNATURE-----");
    expect(lines.slice(1, -1).every((l) => l.length <= 70 && /^[A-Za-z0-9+/=]+$/.test(l))).toBe(true);
    expect(await sshVerify(armored, message, key.publicKey)).toBe(true);
    expect(await sshVerify(armored, message, other.publicKey)).toBe(false);
    expect(await sshVerify(armored, new TextEncoder().encode("tampered"), key.publicKey)).toBe(false);
    expect(await sshVerify(armored, message, key.publicKey, "file")).toBe(false);
    await expect(sshVerify("not a signature", message, key.publicKey)).rejects.toBeInstanceOf(SshSignatureError);
  });

  it("writes the public key as an OpenSSH line", async () => {
    const key = await hubSigningKey(undefined);
    const line = sshPublicKeyLine(key.publicKey, "agent-hub");
    expect(line).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} agent-hub$/);
  });

  it("the hub key is the same for the same secret and differs between secrets", async () => {
    const a = await hubSigningKey("secret number one, long enough");
    const again = await hubSigningKey("secret number one, long enough");
    const b = await hubSigningKey("secret number two, long enough");
    expect(a.publicKey).toHaveLength(32);
    expect(again.publicKey).toEqual(a.publicKey);
    expect(b.publicKey).not.toEqual(a.publicKey);
    // An empty secret means the development default, as for encryption.
    expect((await hubSigningKey("")).publicKey).toEqual((await hubSigningKey(undefined)).publicKey);
  });

  it("a signed commit carries gpgsig over its own bytes without that header", async () => {
    const key = await hubSigningKey(undefined);
    const who = { ...HUB_IDENTITY, timestamp: 1_700_000_000, timezone: "+0000" };
    const body = await serializeSignedCommit(
      { tree: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", parents: [], author: who, committer: who, message: "m\n" },
      key,
    );
    const commit = parseCommit(body);
    const [sig] = commit.extraHeaders;
    expect(sig?.name).toBe("gpgsig");
    const payload = serializeCommit({ ...commit, extraHeaders: [] });
    expect(await sshVerify(sig?.value ?? "", payload, key.publicKey)).toBe(true);
    // Round trip: the commit re-serializes byte for byte, so its id is stable.
    expect(hashObject("commit", serializeCommit(commit))).toBe(hashObject("commit", body));
  });

  it("the genesis pack's commit is signed", async () => {
    const key = await hubSigningKey(undefined);
    const genesis = await buildGenesisPack(new Date(0), key);
    expect(genesis.objectCount).toBe(3);
    expect(genesis.commitOid).toMatch(/^[0-9a-f]{40}$/);
  });
});
