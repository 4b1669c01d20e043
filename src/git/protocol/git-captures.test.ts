import { describe, expect, it } from "vitest";
import { UPLOAD_PACK_CAPABILITIES } from "./advertisement";
import { negotiatedCapabilities } from "./capabilities";
import { decodeRequestBody } from "./gzip";
import { negotiate } from "./negotiation";
import { parseReceiveRequestBytes } from "./receive-request";
import { chunkedStream, text } from "./test-support";
import { parseUploadRequest, wantsShallowUpdate } from "./upload-request";

/**
 * Request bodies recorded from stock git 2.39 (protocol v0 over smart HTTP, against git http-backend).
 * The expected answers are what `git upload-pack --stateless-rpc` replied to the same bodies.
 */
function base64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// A fetch round from a clone with 3 local commits on top of a110e6fc, gzipped by git (body > 1 KiB).
const fetchRoundGz = base64(
  "H4sIAAAAAAACA02TUa5bOQiG37uKs4G0NhhsHrqWCgzcRr1Nrpq0s/0hlWaS82IdwQ+/P3Br1v7Ry/0IAfOW6TK7GnA2YsZUTSLWDKDdnGY/fv5+v5+/6f7xzeOu5/fw43I9+fUSx+3scTK9+InHj+P+/Xw5fVTiI/7x6/r2K26343zZ778r7a5vxzVvJ4/3ux4e8RGX062i8d/P5Xo/9C0u969v5/sX+IzymT61hvDXb99tpkzK3ZdNbyLCKLlZAwxVsqIgy0vx+BC+6584cEpn4zCY7I7L9h6DoTNJsjcT2YgE69P/CptKGC13tjX62L036qourh3Gripz2GjzqSgvI3LtLUPWCF8TVTcNteTV+ybXENF8KrSKBmcBzpY4JvLIWERpYGu47NVXTYafChm6QGZrsroZg5dzldZGj+TZ5zLAEH9xNTFoWsCMAEdiHBzderDUZfYuuxqY8OJqbTSsxj6qlpktHkae1lYMdO+KhR2bPRXIveCrDpZS8JiFrBoiTXq06RwR2XM/FTED1k4P7I/9SpLNDNaR1pY64OE4aTwVmcK8u3NvOkfvsnssKKQhxU12oG0t7k8FVVKNtfvEQg+qFDwaBU6g1VAA99RKeZlgPqYEzghjOWRDnUXDe006oqaz9qg1e2GVsctsAZkAVXrSEkKYZAjVwmlx0/TUlwkaNuTaiXIPmpmaFoPQrVuOpQC7HiC/0I3YId2TR5D67NEAibxWZ/us9QR5XCleXNXWMkdhEmg4Q7JMIbMMm6MYVniq8+C/b+Rf34xU8QoEAAA=",
);
// `git push -o ci.skip -o reviewer=x origin main:refs/heads/feature` (creates a ref; pack of no new objects).
const pushWithOptions = base64(
  "MDBiZjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAgYTExMGU2ZmMwZGYwZjM0NzM2NGZlODU1ZmIyYjg0ZDljODE4ZmZkNiByZWZzL2hlYWRzL2ZlYXR1cmUAIHJlcG9ydC1zdGF0dXMtdjIgc2lkZS1iYW5kLTY0ayBxdWlldCBwdXNoLW9wdGlvbnMgb2JqZWN0LWZvcm1hdD1zaGExIGFnZW50PWdpdC8yLjM5LjUwMDAwMDAwYmNpLnNraXAwMDBlcmV2aWV3ZXI9eDAwMDBQQUNLAAAAAgAAAAACnQiCO9io6rUQrWrHXII8/T7THg==",
);
// The first request of `git fetch --deepen 2` from a depth-1 clone.
const deepenRequest = base64(
  "MDBjMHdhbnQgYTExMGU2ZmMwZGYwZjM0NzM2NGZlODU1ZmIyYjg0ZDljODE4ZmZkNiBtdWx0aV9hY2tfZGV0YWlsZWQgbm8tZG9uZSBzaWRlLWJhbmQtNjRrIGRlZXBlbi1yZWxhdGl2ZSB0aGluLXBhY2sgbm8tcHJvZ3Jlc3MgaW5jbHVkZS10YWcgb2ZzLWRlbHRhIGRlZXBlbi1zaW5jZSBkZWVwZW4tbm90IGFnZW50PWdpdC8yLjM5LjUKMDAzNHNoYWxsb3cgYTExMGU2ZmMwZGYwZjM0NzM2NGZlODU1ZmIyYjg0ZDljODE4ZmZkNjAwMGNkZWVwZW4gMjAwMDA=",
);

describe("bodies recorded from git", () => {
  it("a gzipped no-done fetch round: same ACK lines as git, pack without done", async () => {
    const req = await parseUploadRequest(decodeRequestBody(chunkedStream(fetchRoundGz, [100, 7]), "gzip"));
    expect(req.wants).toHaveLength(2);
    expect(req.haves).toHaveLength(16);
    expect(req.done).toBe(false);
    const base = "a110e6fc0df0f347364fe855fb2b84d9c818ffd6";
    const caps = negotiatedCapabilities(req.capabilities, UPLOAD_PACK_CAPABILITIES);
    const r = await negotiate({
      ...req,
      capabilities: caps,
      isCommon: async (oid) => oid === base,
      isReady: async (commons) => commons.includes(base),
    });
    const unknownAfterBase = req.haves.slice(req.haves.indexOf(base) + 1);
    expect(unknownAfterBase).toHaveLength(12);
    expect(r.lines).toEqual([
      `ACK ${base} common`,
      ...unknownAfterBase.map((oid) => `ACK ${oid} ready`),
      "NAK",
      `ACK ${base}`,
    ]);
    expect(r.sendPack).toBe(true);
  });

  it("a push with options: command, capabilities, options, then the pack", async () => {
    const req = await parseReceiveRequestBytes(pushWithOptions);
    expect(req.commands).toEqual([
      {
        kind: "create",
        oldOid: "0".repeat(40),
        newOid: "a110e6fc0df0f347364fe855fb2b84d9c818ffd6",
        ref: "refs/heads/feature",
        refError: null,
      },
    ]);
    expect(req.capabilities).toContain("push-options");
    expect(req.pushOptions).toEqual(["ci.skip", "reviewer=x"]);
    expect(text(req.pack.subarray(0, 4))).toBe("PACK");
    expect(req.pack.length).toBe(32);
  });

  it("a deepen request ends after the want list and gets the shallow section only", async () => {
    const req = await parseUploadRequest(deepenRequest);
    expect(req).toMatchObject({ depth: 2, deepenRelative: true, haveListClosed: false, done: false });
    expect(req.shallows).toEqual(["a110e6fc0df0f347364fe855fb2b84d9c818ffd6"]);
    expect(wantsShallowUpdate(req)).toBe(true);
    const caps = negotiatedCapabilities(req.capabilities, UPLOAD_PACK_CAPABILITIES);
    const r = await negotiate({ ...req, capabilities: caps, isCommon: async () => true });
    expect(r.lines).toEqual([]);
    expect(r.sendPack).toBe(false);
  });
});
