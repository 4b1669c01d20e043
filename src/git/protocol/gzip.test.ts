import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors";
import { decodeRequestBody } from "./gzip";
import { readAllBytes } from "./pkt-line";
import { bytes, chunkedStream, oidA, pkt, text } from "./test-support";
import { parseUploadRequest } from "./upload-request";

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  return readAllBytes(chunkedStream(data).pipeThrough(new CompressionStream("gzip")));
}

async function failure(promise: Promise<unknown>): Promise<ProtocolError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProtocolError);
  return err as ProtocolError;
}

describe("request body decoding", () => {
  const request = bytes(`${pkt(`want ${oidA} side-band-64k\n`)}0000${pkt("done\n")}`);

  it("gunzips a gzip body, in any chunking, into a parseable request", async () => {
    const compressed = await gzip(request);
    const decoded = decodeRequestBody(chunkedStream(compressed, [1, 2, 3, 5, 8]), "gzip");
    const req = await parseUploadRequest(decoded);
    expect(req.wants).toEqual([oidA]);
    expect(req.done).toBe(true);
    expect(text(await readAllBytes(decodeRequestBody(chunkedStream(compressed), " X-GZIP ")))).toBe(text(request));
  });

  it("passes an unencoded body through and treats a missing body as empty", async () => {
    expect(await readAllBytes(decodeRequestBody(chunkedStream(request), null))).toEqual(request);
    expect(await readAllBytes(decodeRequestBody(chunkedStream(request), "identity"))).toEqual(request);
    expect((await readAllBytes(decodeRequestBody(null, null))).length).toBe(0);
  });

  it("stops a body that decodes past the cap (a gzip bomb)", async () => {
    const bomb = await gzip(new Uint8Array(5_000_000));
    expect(bomb.length).toBeLessThan(20_000);
    const err = await failure(readAllBytes(decodeRequestBody(chunkedStream(bomb), "gzip", 1_000_000)));
    expect(err.code).toBe("body_too_large");
    const plain = await failure(readAllBytes(decodeRequestBody(chunkedStream(new Uint8Array(2000)), null, 1000)));
    expect(plain.code).toBe("body_too_large");
  });

  it("reports corrupt or truncated gzip as a ProtocolError", async () => {
    const compressed = await gzip(request);
    const corrupt = await failure(readAllBytes(decodeRequestBody(chunkedStream(bytes("not gzip at all")), "gzip")));
    expect(corrupt.code).toBe("bad_encoding");
    const truncated = await failure(
      parseUploadRequest(decodeRequestBody(chunkedStream(compressed.subarray(0, compressed.length - 10)), "gzip")),
    );
    expect(truncated).toBeInstanceOf(ProtocolError);
  });

  it("refuses an encoding it cannot decode when the body is read", async () => {
    const br = await failure(parseUploadRequest(decodeRequestBody(chunkedStream(request), "br")));
    expect(br.code).toBe("bad_encoding");
    const deflate = await failure(readAllBytes(decodeRequestBody(null, "deflate")));
    expect(deflate.message).toBe("unsupported Content-Encoding");
  });
});
