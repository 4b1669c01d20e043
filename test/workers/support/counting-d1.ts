/**
 * A D1 binding that counts round trips to the real one underneath: each executed statement (`first`,
 * `all`, `run`, `raw`) is one, a `batch` is one however many statements it holds, `exec` is one. The
 * sessions it opens (`withSession`, which every API request uses) count the same way. Every query still
 * runs against the test's real local D1; only the counting is added.
 */
export type CountingD1 = { db: D1Database; roundTrips: () => number; statements: () => string[]; reset: () => void };

const EXECUTE = new Set(["first", "all", "run", "raw"]);

export function countingD1(real: D1Database): CountingD1 {
  let trips = 0;
  let seen: string[] = [];
  // The real statement behind each wrapper: `batch` only accepts statements the real binding made.
  const unwrap = new WeakMap<object, D1PreparedStatement>();

  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const wrapper = new Proxy(stmt, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (typeof value !== "function") return value;
        if (key === "bind") return (...args: unknown[]) => wrap(value.apply(target, args), sql);
        if (typeof key === "string" && EXECUTE.has(key)) {
          return (...args: unknown[]) => {
            trips++;
            seen.push(sql);
            return value.apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
    unwrap.set(wrapper, stmt);
    return wrapper;
  };

  // The binding and its sessions: both prepare and batch.
  const counted = <T extends D1Database | D1DatabaseSession>(d1: T): T =>
    new Proxy(d1, {
      get(target, key) {
        const value: unknown = Reflect.get(target, key, target);
        if (typeof value !== "function") return value;
        if (key === "prepare") return (sql: string) => wrap(value.call(target, sql), sql);
        if (key === "withSession") return (constraint?: string) => counted(value.call(target, constraint));
        if (key === "batch") {
          return (statements: D1PreparedStatement[]) => {
            trips++;
            seen.push(`batch of ${statements.length}`);
            return value.call(
              target,
              statements.map((s) => unwrap.get(s) ?? s),
            );
          };
        }
        if (key === "exec") {
          return (sql: string) => {
            trips++;
            seen.push(sql);
            return value.call(target, sql);
          };
        }
        return value.bind(target);
      },
    });
  const db = counted(real);

  return {
    db,
    roundTrips: () => trips,
    statements: () => [...seen],
    reset: () => {
      trips = 0;
      seen = [];
    },
  };
}
