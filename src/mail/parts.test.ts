import { describe, expect, it } from "vitest";
import { mixedMessage } from "../../test/workers/support/mail-samples";
import { buildUserMessage } from "./build";
import { MailPartNotFound } from "./mime";
import { parseMailToEmail } from "./parse";
import { attachmentDisposition, blobIdFor, extractPart, parseBlobId } from "./parts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("parseBlobId", () => {
  it("splits blob ids, letting mail ids contain underscores", () => {
    expect(parseBlobId("blob_sml_abc_1")).toEqual({ mailId: "sml_abc", partPath: "1" });
    expect(parseBlobId("blob_sml_abc_1.2.10")).toEqual({ mailId: "sml_abc", partPath: "1.2.10" });
    expect(parseBlobId("blob_a_b_c_3")).toEqual({ mailId: "a_b_c", partPath: "3" });
    expect(parseBlobId(blobIdFor("sml_x", "2.1"))).toEqual({ mailId: "sml_x", partPath: "2.1" });
  });

  it("rejects everything else", () => {
    for (const bad of [
      "bad-format",
      "blob_",
      "blob__1",
      "blob_sml_x",
      "blob_sml_x_1.",
      "blob_sml_x_.1",
      "blob_sml_x_1a",
      "blob_sml_x_1..2",
      "xblob_s_1",
      "blob_a\n_1",
    ]) {
      expect(parseBlobId(bad)).toBeNull();
    }
  });
});

describe("extractPart", () => {
  it("returns every attachment the parser lists, decoded, with its type and file name", () => {
    const email = parseMailToEmail(mixedMessage, "sml_x");
    const got = email.attachments.map((a) => {
      const part = extractPart(mixedMessage, parseBlobId(a.blobId)?.partPath as string);
      expect(part.body.byteLength).toBe(a.size);
      return { ...part, body: Array.from(part.body) };
    });
    expect(got).toEqual([
      { contentType: "image/png", filename: "dot.png", body: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
      { contentType: "text/csv", filename: "résumé.csv", body: Array.from(new TextEncoder().encode("a,b\r\n1,2")) },
      { contentType: "text/plain", filename: "notes.txt", body: Array.from(new TextEncoder().encode("attached text")) },
    ]);
  });

  it("decodes text parts and keeps their charset; walks nested paths", () => {
    const plain = extractPart(mixedMessage, "1.1");
    expect(plain.contentType).toBe("text/plain; charset=iso-8859-1");
    expect(Array.from(plain.body)).toEqual([
      ...Array.from(new TextEncoder().encode("Gr")),
      0xfc,
      0xdf,
      ...Array.from(new TextEncoder().encode("e, softbreak")),
    ]);
    expect(text(extractPart(mixedMessage, "1.2").body)).toBe("<p>Grüße</p>");
    expect(extractPart(mixedMessage, "1").contentType).toBe("multipart/alternative");
  });

  it("reaches part 1 of a signed message and part 1 of a single-part message", async () => {
    const raw = await buildUserMessage({
      from: { email: "u@acme.example" },
      to: { email: "ins@acme.example" },
      text: "grüß dich",
      messageId: "m@acme.example",
      date: new Date(),
      headers: {},
      sign: async () => "sig",
    });
    const part = extractPart(raw, "1");
    expect(part).toMatchObject({ contentType: "text/plain; charset=utf-8", filename: null });
    expect(text(part.body)).toBe("grüß dich");
    expect(extractPart(raw, "2").contentType).toBe("application/pgp-signature");
    const single = new TextEncoder().encode("Content-Type: application/json\r\n\r\n{}");
    expect(text(extractPart(single, "1").body)).toBe("{}");
  });

  it("throws MailPartNotFound for paths that name no part", () => {
    for (const path of ["0", "5", "1.3", "1.1.1", "2.1", "", "a", "1.", "-1"]) {
      expect(() => extractPart(mixedMessage, path), path).toThrow(MailPartNotFound);
    }
    const single = new TextEncoder().encode("Content-Type: text/plain\r\n\r\nhi");
    for (const path of ["2", "1.1"]) expect(() => extractPart(single, path)).toThrow(MailPartNotFound);
  });
});

describe("attachmentDisposition", () => {
  it("gives an ASCII fallback and the exact UTF-8 name", () => {
    expect(attachmentDisposition(null)).toBe("attachment");
    expect(attachmentDisposition("a.pdf")).toBe(`attachment; filename="a.pdf"; filename*=UTF-8''a.pdf`);
    expect(attachmentDisposition('rés"umé\r\n/x.csv')).toBe(
      `attachment; filename="r_s_um__x.csv"; filename*=UTF-8''r%C3%A9s%22um%C3%A9_x.csv`,
    );
  });
});
