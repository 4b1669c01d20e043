import { describe, expect, it } from "vitest";
import {
  type AdvertisementInput,
  agentCapability,
  buildAdvertisement,
  RECEIVE_PACK_CAPABILITIES,
  UPLOAD_PACK_CAPABILITIES,
} from "./advertisement";
import { decodePkts, payloadText } from "./pkt-line";
import { oidA, oidB, oidC, oidD, text } from "./test-support";

const zeros = "0".repeat(40);

function lines(out: Uint8Array): string[] {
  return decodePkts(out).map((p) => (p.type === "data" ? text(p.payload) : p.type));
}

function upload(extra: Partial<AdvertisementInput> = {}): string[] {
  return lines(
    buildAdvertisement({
      service: "git-upload-pack",
      refs: [],
      capabilities: UPLOAD_PACK_CAPABILITIES,
      version: "0.1.0",
      ...extra,
    }),
  );
}

const uploadCaps = `${UPLOAD_PACK_CAPABILITIES.join(" ")} agent=agent-hub/0.1.0`;

describe("info/refs advertisement", () => {
  it("lays out a single ref byte-exactly", () => {
    const out = buildAdvertisement({
      service: "git-upload-pack",
      refs: [{ name: "refs/heads/main", oid: oidA }],
      capabilities: ["ofs-delta"],
      version: "1.2.3",
    });
    const first = `${oidA} refs/heads/main\0ofs-delta agent=agent-hub/1.2.3\n`;
    expect(text(out)).toBe(
      `001e# service=git-upload-pack\n0000${(first.length + 4).toString(16).padStart(4, "0")}${first}0000`,
    );
  });

  it("puts capabilities on the first ref only and sorts refs by name", () => {
    expect(
      upload({
        refs: [
          { name: "refs/tags/v1", oid: oidC },
          { name: "refs/heads/main", oid: oidA },
          { name: "refs/heads/dev", oid: oidB },
        ],
      }),
    ).toEqual([
      "# service=git-upload-pack\n",
      "flush",
      `${oidB} refs/heads/dev\0${uploadCaps}\n`,
      `${oidA} refs/heads/main\n`,
      `${oidC} refs/tags/v1\n`,
      "flush",
    ]);
  });

  it("advertises the zero id capabilities^{} record for an empty repository or when every ref is hidden", () => {
    const empty = [`${zeros} capabilities^{}\0${uploadCaps}\n`];
    expect(upload().slice(2, -1)).toEqual(empty);
    expect(upload({ refs: [{ name: "refs/heads/main", oid: oidA }], refPattern: "refs/tags/*" }).slice(2, -1)).toEqual(
      empty,
    );
  });

  it("filters refs by refPattern; ** lets nested refs through", () => {
    const refs = [
      { name: "refs/heads/main", oid: oidA },
      { name: "refs/heads/team/x", oid: oidB },
      { name: "refs/tags/v1", oid: oidC },
    ];
    const names = (pattern: string) =>
      upload({ refs, refPattern: pattern })
        .slice(2, -1)
        .map((l) => l.replace("\n", "").split("\0")[0]?.split(" ")[1]);
    expect(names("refs/heads/*")).toEqual(["refs/heads/main"]);
    expect(names("refs/heads/**")).toEqual(["refs/heads/main", "refs/heads/team/x"]);
    expect(names("**")).toEqual(["refs/heads/main", "refs/heads/team/x", "refs/tags/v1"]);
  });

  it("puts HEAD first with symref when its target is visible", () => {
    const refs = [
      { name: "refs/heads/main", oid: oidA },
      { name: "refs/heads/dev", oid: oidB },
    ];
    expect(upload({ refs, headTarget: "refs/heads/main" }).slice(2, -1)).toEqual([
      `${oidA} HEAD\0${UPLOAD_PACK_CAPABILITIES.slice(0, -1).join(" ")} symref=HEAD:refs/heads/main object-format=sha1 agent=agent-hub/0.1.0\n`,
      `${oidB} refs/heads/dev\n`,
      `${oidA} refs/heads/main\n`,
    ]);
  });

  it("falls back to the plain layout when HEAD is null, filtered out or dangling", () => {
    const refs = [
      { name: "refs/heads/main", oid: oidA },
      { name: "refs/heads/dev", oid: oidB },
    ];
    const plain = upload({ refs });
    expect(plain[2]).toBe(`${oidB} refs/heads/dev\0${uploadCaps}\n`);
    expect(upload({ refs, headTarget: null })).toEqual(plain);
    expect(upload({ refs, headTarget: "refs/heads/gone" })).toEqual(plain);
    const filtered = upload({ refs, headTarget: "refs/heads/main", refPattern: "refs/heads/dev" });
    expect(filtered.slice(2, -1)).toEqual([`${oidB} refs/heads/dev\0${uploadCaps}\n`]);
  });

  it("peels annotated tags for upload-pack", () => {
    const out = upload({ refs: [{ name: "refs/tags/v1", oid: oidC, peeled: oidD }] });
    expect(out.slice(2, -1)).toEqual([`${oidC} refs/tags/v1\0${uploadCaps}\n`, `${oidD} refs/tags/v1^{}\n`]);
  });

  it("builds the receive-pack advertisement without HEAD or peeled lines unless asked", () => {
    const base = {
      service: "git-receive-pack" as const,
      capabilities: RECEIVE_PACK_CAPABILITIES,
      version: "0.1.0",
    };
    const caps = `${RECEIVE_PACK_CAPABILITIES.join(" ")} agent=agent-hub/0.1.0`;
    expect(lines(buildAdvertisement({ ...base, refs: [] }))).toEqual([
      "# service=git-receive-pack\n",
      "flush",
      `${zeros} capabilities^{}\0${caps}\n`,
      "flush",
    ]);
    const refs = [{ name: "refs/tags/v1", oid: oidC, peeled: oidD }];
    expect(lines(buildAdvertisement({ ...base, refs, headTarget: "refs/tags/v1" })).slice(2, -1)).toEqual([
      `${oidC} refs/tags/v1\0${caps}\n`,
    ]);
    const withHead = lines(buildAdvertisement({ ...base, refs, headTarget: "refs/tags/v1", includeHead: true }));
    expect(withHead[2]).toBe(
      `${oidC} HEAD\0${RECEIVE_PACK_CAPABILITIES.slice(0, -1).join(" ")} symref=HEAD:refs/tags/v1 object-format=sha1 agent=agent-hub/0.1.0\n`,
    );
  });

  it("default capability sets advertise what the parsers implement", () => {
    expect(agentCapability("0.1.0")).toMatch(/^agent=agent-hub\/\S+$/);
    expect(UPLOAD_PACK_CAPABILITIES).not.toContain("report-status");
    expect(UPLOAD_PACK_CAPABILITIES).toContain("multi_ack_detailed");
    for (const served of ["filter", "deepen-since", "deepen-not", "deepen-relative"]) {
      expect(UPLOAD_PACK_CAPABILITIES).toContain(served);
    }
    expect(RECEIVE_PACK_CAPABILITIES).toContain("report-status");
    expect(RECEIVE_PACK_CAPABILITIES).not.toContain("thin-pack");
    expect(RECEIVE_PACK_CAPABILITIES).not.toContain("report-status-v2");
    // Every advertised line parses back as a pkt-line with a trailing LF.
    const out = buildAdvertisement({
      service: "git-upload-pack",
      refs: [{ name: "refs/heads/main", oid: oidA }],
      capabilities: UPLOAD_PACK_CAPABILITIES,
      version: "x",
    });
    for (const p of decodePkts(out)) if (p.type === "data") expect(payloadText(p.payload).includes("\n")).toBe(false);
  });
});
