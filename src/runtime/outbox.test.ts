import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { isKeptWhileAway, Outbox } from "./outbox";
import type { InstanceHubFrame } from "./protocol";

/** Runs `fn` against the SQLite storage of a fresh instance object (the storage the outbox lives in). */
async function withStorage<T>(fn: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const stub = env.INSTANCE.get(env.INSTANCE.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state.storage.sql));
}

const mail = (mailId: string): InstanceHubFrame => ({
  type: "mail.inbound",
  agentAddress: "a@t.example",
  mailId,
  rawMessage: "",
});

describe("Outbox", () => {
  it("sends kept frames in order and returns the mail that went out", async () => {
    await withStorage((sql) => {
      const outbox = new Outbox(sql);
      outbox.keep(mail("m1"));
      outbox.keep({ type: "sync.request", agentAddress: "a@t.example", transferId: "s1" });
      outbox.keep(mail("m2"));
      const sent: InstanceHubFrame[] = [];
      expect(outbox.flush((f) => sent.push(f) > 0)).toEqual(["m1", "m2"]);
      expect(sent.map((f) => f.type)).toEqual(["mail.inbound", "sync.request", "mail.inbound"]);
      expect(outbox.flush(() => true)).toEqual([]);
    });
  });

  it("stops at a frame it cannot send and keeps it and the rest for later", async () => {
    await withStorage((sql) => {
      const outbox = new Outbox(sql);
      for (const id of ["m1", "m2", "m3"]) outbox.keep(mail(id));
      let budget = 1;
      expect(outbox.flush(() => budget-- > 0)).toEqual(["m1"]);
      expect(outbox.flush(() => true)).toEqual(["m2", "m3"]);
    });
  });

  it("keeps at most the newest 1,000 frames, none older than a day", async () => {
    await withStorage((sql) => {
      const outbox = new Outbox(sql);
      const dayAgo = Date.now() - 25 * 60 * 60 * 1000;
      outbox.keep(mail("stale"), dayAgo);
      for (let i = 0; i < 1_005; i++) outbox.keep(mail(`m${i}`));
      const sent = outbox.flush(() => true);
      expect(sent).toHaveLength(1_000);
      expect(sent[0]).toBe("m5");
      expect(sent).not.toContain("stale");
    });
  });

  it("clears everything when the instance stops", async () => {
    await withStorage((sql) => {
      const outbox = new Outbox(sql);
      outbox.keep(mail("m1"));
      outbox.clear();
      expect(outbox.flush(() => true)).toEqual([]);
    });
  });

  it("keeps only frames that still mean something after a reconnect", () => {
    expect(isKeptWhileAway(mail("m"))).toBe(true);
    expect(isKeptWhileAway({ type: "pong" })).toBe(false);
    expect(isKeptWhileAway({ type: "challenge", agentAddress: "a", nonce: "00" })).toBe(false);
    expect(isKeptWhileAway({ type: "session.start", agentAddress: "a" })).toBe(false);
  });
});
