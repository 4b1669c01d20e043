import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { RequestD1, StaleAccessError } from "./request-d1";

// A check as a request carries it: one statement whose rows the test accepts or not.
const check = (d1: RequestD1, accept: boolean) => {
  const seen: unknown[] = [];
  d1.carry([d1.prepare("select 42 as answer")], (results) => {
    seen.push(results[0]?.results);
    return accept;
  });
  return seen;
};

describe("RequestD1 carrying a check with the first read", () => {
  beforeAll(async () => {
    await env.DB.batch([
      env.DB.prepare("create table if not exists carry_a (id integer primary key, x text)"),
      env.DB.prepare("create table if not exists carry_b (id integer primary key, y text)"),
      env.DB.prepare("create table if not exists carry_log (note text)"),
      env.DB.prepare("insert or replace into carry_a values (1, 'a1'), (2, 'a2')"),
      env.DB.prepare("insert or replace into carry_b values (1, 'b1'), (2, 'b2')"),
    ]);
  });

  const join =
    "select carry_a.id, carry_b.id, carry_a.x, carry_b.y from carry_a join carry_b on carry_a.id = carry_b.id where carry_a.id >= ? order by carry_a.id desc";

  it("sends the check with the read in one round trip; the read's rows are its own, joins too", async () => {
    const plain = await new RequestD1(env.DB, "first-primary").prepare(join).bind(1).raw();
    const d1 = new RequestD1(env.DB, "first-primary");
    const seen = check(d1, true);
    expect(await d1.prepare(join).bind(1).raw()).toEqual(plain);
    expect(plain).toEqual([
      [2, 2, "a2", "b2"],
      [1, 1, "a1", "b1"],
    ]);
    expect(seen).toEqual([[{ answer: 42 }]]);
    expect(await d1.carried()).toBe(true);
    expect(d1.usage.roundTrips).toBe(1);
    // Later queries run on their own.
    expect(await d1.prepare("select x from carry_a where id = ?").bind(2).first("x")).toBe("a2");
    expect(d1.usage.roundTrips).toBe(2);
  });

  it("carries with all(), first() and batch(), with the same answers as without", async () => {
    for (const run of [
      (d1: RequestD1) => d1.prepare("select * from carry_a order by id").all(),
      (d1: RequestD1) => d1.prepare("select * from carry_a order by id").first(),
      (d1: RequestD1) => d1.prepare("select x from carry_a order by id").first("x"),
      (d1: RequestD1) => d1.batch([d1.prepare("select 1 as one"), d1.prepare("select y from carry_b order by id")]),
      // Columns named like array indexes would not keep their order in an object: read again alone.
      (d1: RequestD1) => d1.prepare("select 'z' as \"1\", 'y' as \"0\"").raw(),
    ]) {
      const strip = (value: unknown) => JSON.parse(JSON.stringify(value, (k, v) => (k === "meta" ? undefined : v)));
      const expected = strip(await run(new RequestD1(env.DB, "first-primary")));
      const d1 = new RequestD1(env.DB, "first-primary");
      check(d1, true);
      expect(strip(await run(d1))).toEqual(expected);
      expect(await d1.carried()).toBe(true);
    }
  });

  it("a refused check: the read throws, so does every later query, and nothing reaches the caller", async () => {
    const d1 = new RequestD1(env.DB, "first-primary");
    check(d1, false);
    await expect(d1.prepare(join).bind(1).raw()).rejects.toBeInstanceOf(StaleAccessError);
    await expect(d1.prepare("select 1").first()).rejects.toBeInstanceOf(StaleAccessError);
    expect(await d1.carried()).toBe(false);
  });

  it("a first query that writes waits for the check, sent alone; refused, the write never runs", async () => {
    const accepted = new RequestD1(env.DB, "first-primary");
    check(accepted, true);
    await accepted.prepare("insert into carry_log values ('accepted')").run();
    expect(accepted.usage.roundTrips).toBe(2);

    const refused = new RequestD1(env.DB, "first-primary");
    check(refused, false);
    await expect(refused.prepare("insert into carry_log values ('refused')").run()).rejects.toBeInstanceOf(
      StaleAccessError,
    );
    await expect(refused.batch([refused.prepare("insert into carry_log values ('refused')")])).rejects.toBeInstanceOf(
      StaleAccessError,
    );
    const notes = await env.DB.prepare("select note from carry_log").all<{ note: string }>();
    expect(notes.results.map((r) => r.note)).toEqual(["accepted"]);
  });

  it("a check no query took is sent alone at the end", async () => {
    const d1 = new RequestD1(env.DB, "first-primary");
    const seen = check(d1, true);
    expect(await d1.carried()).toBe(true);
    expect(seen).toHaveLength(1);
    expect(d1.usage.roundTrips).toBe(1);
    const refused = new RequestD1(env.DB, "first-primary");
    check(refused, false);
    expect(await refused.carried()).toBe(false);
  });

  it("queries started together while the check travels wait for its verdict", async () => {
    const d1 = new RequestD1(env.DB, "first-primary");
    check(d1, false);
    const [first, second] = await Promise.allSettled([
      d1.prepare("select 1 as one").all(),
      d1.prepare("select 2 as two").all(),
    ]);
    expect(first.status).toBe("rejected");
    expect(second.status).toBe("rejected");
  });
});
