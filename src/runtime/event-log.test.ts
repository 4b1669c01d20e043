import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { EventLog } from "./event-log";

/** Runs `fn` against the SQLite storage of a fresh instance object (the storage the log lives in). */
async function withStorage<T>(fn: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const stub = env.INSTANCE.get(env.INSTANCE.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state.storage.sql));
}

describe("EventLog", () => {
  it("numbers events at once and shows them to readers before the tick persists them", async () => {
    await withStorage((sql) => {
      const log = new EventLog(sql, { maxEvents: 100, maxAgeMs: 60_000 });
      const base = log.lastSeq();
      const a = log.append("a", '{"n":1}');
      const b = log.append("b", '{"n":2}');
      expect([a.seq, b.seq]).toEqual([base + 1, base + 2]);
      expect(log.since(base).map((e) => [e.seq, e.type, e.data])).toEqual([
        [base + 1, "a", '{"n":1}'],
        [base + 2, "b", '{"n":2}'],
      ]);
      expect(log.since(base + 1).map((e) => e.seq)).toEqual([base + 2]);
      expect(log.oldestSeq()).toBe(base + 1);
    });
  });

  it("keeps only the newest maxEvents", async () => {
    await withStorage((sql) => {
      const log = new EventLog(sql, { maxEvents: 3, maxAgeMs: 60_000 });
      for (let i = 0; i < 1000; i++) log.append("x", "{}");
      log.persist();
      expect(log.oldestSeq()).toBe(998);
      expect(log.since(0).map((e) => e.seq)).toEqual([998, 999, 1000]);
    });
  });

  it("never numbers an event twice, even when retention deleted every row and the object restarted", async () => {
    await withStorage((sql) => {
      const log = new EventLog(sql, { maxEvents: 10_000, maxAgeMs: -1 });
      for (let i = 0; i < 600; i++) log.append("old", "{}", Date.now() - 1_000);
      log.persist();
      expect(log.oldestSeq()).toBeNull();
      const restarted = new EventLog(sql, { maxEvents: 10_000, maxAgeMs: 60_000 });
      expect(restarted.lastSeq()).toBe(600);
      expect(restarted.append("new", "{}").seq).toBe(601);
      expect(restarted.since(0).map((e) => e.seq)).toEqual([601]);
    });
  });
});
