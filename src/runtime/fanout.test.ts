import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Delivery, Fanout, fanoutSchedule, nextTickDue, type SseEvent, sseMessage } from "./fanout";

const decoder = new TextDecoder();
const event = (seq: number): SseEvent => ({ seq, text: sseMessage(seq, "custom.n", `{"n":${seq}}`) });

/** The SSE ids in what a sink was sent, in order. */
function ids(chunks: Uint8Array[]): number[] {
  return [
    ...chunks
      .map((c) => decoder.decode(c))
      .join("")
      .matchAll(/^id: (\d+)$/gm),
  ].map((m) => Number(m[1]));
}

/** Records what each sink is sent; the sinks in `busy` have not taken their last chunk yet. */
function recorder() {
  const sent = new Map<string, Uint8Array[]>();
  const busy = new Set<string>();
  const dropped: string[] = [];
  const send: Delivery<string> = {
    busy: (sink) => busy.has(sink),
    write: (sink, bytes) => sent.set(sink, [...(sent.get(sink) ?? []), bytes]),
    drop: (sink) => {
      dropped.push(sink);
    },
  };
  return { sent, send, busy, dropped, ids: (sink: string) => ids(sent.get(sink) ?? []) };
}

describe("fanoutSchedule", () => {
  it("writes each subscriber every 25 ms and serves up to 50 per tick", () => {
    expect(fanoutSchedule(0)).toEqual({ intervalMs: 25, groups: 1, tickMs: 25 });
    expect(fanoutSchedule(50)).toEqual({ intervalMs: 25, groups: 1, tickMs: 25 });
    expect(fanoutSchedule(100)).toEqual({ intervalMs: 25, groups: 2, tickMs: 12.5 });
  });

  it("lengthens the interval with more subscribers, in groups on staggered ticks", () => {
    expect(fanoutSchedule(500)).toEqual({ intervalMs: 50, groups: 10, tickMs: 5 });
    // At most 100 ms between writes, and ticks no closer than 5 ms: groups grow past 50.
    expect(fanoutSchedule(1000)).toEqual({ intervalMs: 100, groups: 20, tickMs: 5 });
    expect(fanoutSchedule(10_000)).toEqual({ intervalMs: 100, groups: 20, tickMs: 5 });
  });
});

describe("nextTickDue", () => {
  it("keeps the cadence through a timer's lateness, and starts again when the object is busy", () => {
    // Due at 100, 105, 110, …: a timer up to half a tick late does not push the later ticks back.
    expect(nextTickDue(100, 101, 5)).toBe(105);
    expect(nextTickDue(105, 107.5, 5)).toBe(110);
    expect(nextTickDue(110, 110, 5)).toBe(115);
    // Later than that (or a quiet stream, due long ago): counted again from when the tick ran.
    expect(nextTickDue(115, 118, 5)).toBe(123);
    expect(nextTickDue(0, 1_000_000, 5)).toBe(1_000_005);
  });

  it("runs ticks at the schedule's rate under a timer that is always late", () => {
    // A timer that fires 1.5 ms after the wait it was given, for 10 s of 5 ms ticks.
    let due = 0;
    let now = 0;
    let ticks = 0;
    while (now < 10_000) {
      now = Math.max(now, due) + 1.5;
      due = nextTickDue(due, now, 5);
      ticks++;
    }
    expect(ticks).toBeGreaterThanOrEqual(1990);
  });
});

describe("Fanout", () => {
  it("sends members behind by the same events the same bytes, one chunk per tick", () => {
    const fanout = new Fanout<string>();
    const { sent, send, ids } = recorder();
    fanout.add("a", 0);
    fanout.add("b", 0);
    for (const seq of [1, 2, 3]) fanout.push(event(seq));
    expect(fanout.tick(send)).toBe(false);
    expect(ids("a")).toEqual([1, 2, 3]);
    expect(sent.get("a")).toHaveLength(1);
    expect(sent.get("b")?.[0]).toBe(sent.get("a")?.[0]);
    expect(decoder.decode(sent.get("a")?.[0])).toBe(
      'id: 1\nevent: agent.event\ndata: {"type":"custom.n","seq":1,"data":{"n":1}}\n\n' +
        'id: 2\nevent: agent.event\ndata: {"type":"custom.n","seq":2,"data":{"n":2}}\n\n' +
        'id: 3\nevent: agent.event\ndata: {"type":"custom.n","seq":3,"data":{"n":3}}\n\n',
    );
  });

  it("a member that joined with a replay gets only the events after it", () => {
    const fanout = new Fanout<string>();
    const { send, ids } = recorder();
    fanout.add("early", 0);
    fanout.push(event(1));
    fanout.push(event(2));
    fanout.add("late", 2);
    fanout.push(event(3));
    fanout.tick(send);
    expect(ids("early")).toEqual([1, 2, 3]);
    expect(ids("late")).toEqual([3]);
  });

  it("serves one group per tick and reports the others still behind", () => {
    const fanout = new Fanout<string>();
    const { send, ids } = recorder();
    const sinks = Array.from({ length: 125 }, (_, i) => `s${i}`);
    for (const s of sinks) fanout.add(s, 0);
    expect(fanout.schedule().groups).toBe(3);
    fanout.push(event(1));
    expect(fanout.tick(send)).toBe(true);
    expect(sinks.filter((s) => ids(s).length > 0)).toHaveLength(42);
    fanout.push(event(2));
    expect(fanout.tick(send)).toBe(true);
    expect(fanout.tick(send)).toBe(true);
    // The first group is served again with only what it lacks; then nobody is behind.
    expect(fanout.tick(send)).toBe(false);
    for (const s of sinks) expect(ids(s)).toEqual([1, 2]);
  });

  it("drain sends everyone everything at once", () => {
    const fanout = new Fanout<string>();
    const { send, ids } = recorder();
    for (let i = 0; i < 300; i++) fanout.add(`s${i}`, 0);
    fanout.push(event(1));
    fanout.drain(send);
    expect(fanout.pending()).toBe(false);
    for (let i = 0; i < 300; i++) expect(ids(`s${i}`)).toEqual([1]);
  });

  it("members that leave while being sent to (dead streams) cost the others nothing: one round serves them all", () => {
    const fanout = new Fanout<string>();
    const { send, ids } = recorder();
    const sinks = Array.from({ length: 300 }, (_, i) => `s${i}`);
    for (const s of sinks) fanout.add(s, 0);
    const dead = new Set(sinks.filter((_, i) => i % 7 === 3));
    const sendOrLeave: Delivery<string> = {
      ...send,
      write: (sink, bytes) => (dead.has(sink) ? fanout.remove(sink) : send.write(sink, bytes)),
    };
    fanout.push(event(1));
    const { groups } = fanout.schedule();
    expect(groups).toBe(6);
    for (let t = 0; t < groups; t++) fanout.tick(sendOrLeave);
    for (const s of sinks) expect(ids(s)).toEqual(dead.has(s) ? [] : [1]);
    expect(fanout.size).toBe(sinks.length - dead.size);
    expect(fanout.pending()).toBe(false);
  });

  it("skips a member still busy with its last chunk, then sends it everything it lacks in one chunk", () => {
    const fanout = new Fanout<string>();
    const { sent, send, busy, ids } = recorder();
    fanout.add("slow", 0);
    fanout.add("fast", 0);
    fanout.push(event(1));
    fanout.tick(send);
    busy.add("slow");
    fanout.push(event(2));
    expect(fanout.tick(send)).toBe(true);
    fanout.push(event(3));
    fanout.tick(send);
    expect(ids("fast")).toEqual([1, 2, 3]);
    expect(ids("slow")).toEqual([1]);
    busy.delete("slow");
    expect(fanout.tick(send)).toBe(false);
    expect(ids("slow")).toEqual([1, 2, 3]);
    expect(sent.get("slow")).toHaveLength(2);
  });

  it("drops a busy member once it lacks more than maxLag characters; one that reads is never dropped", () => {
    const fanout = new Fanout<string>(3 * event(1).text.length);
    const { send: record, busy, dropped, ids } = recorder();
    // As a stream does, a dropped member leaves.
    const send: Delivery<string> = {
      ...record,
      drop: (sink) => {
        record.drop(sink);
        fanout.remove(sink);
      },
    };
    fanout.add("stalled", 0);
    fanout.add("reading", 0);
    busy.add("stalled");
    for (let seq = 1; seq <= 3; seq++) fanout.push(event(seq));
    fanout.tick(send);
    expect(dropped).toEqual([]);
    // One big chunk for a member that keeps reading, however much it lacks.
    for (let seq = 4; seq <= 10; seq++) fanout.push(event(seq));
    fanout.tick(send);
    expect(dropped).toEqual(["stalled"]);
    expect(ids("reading")).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("a member that joined ahead of the newest event (replayed further) gets only the events after its place", () => {
    const fanout = new Fanout<string>();
    const { send, ids } = recorder();
    fanout.push(event(1));
    fanout.add("ahead", 3);
    fanout.add("here", 1);
    for (const seq of [2, 3, 4]) fanout.push(event(seq));
    expect(fanout.tick(send)).toBe(false);
    expect(ids("ahead")).toEqual([4]);
    expect(ids("here")).toEqual([2, 3, 4]);
  });

  it("whatever joins, leaves, stalls and ticks in between, each member gets every later event once, in order", () => {
    type Step =
      | { kind: "push" }
      | { kind: "add" }
      | { kind: "remove"; pick: number }
      | { kind: "tick" }
      | { kind: "busy"; pick: number };
    const step = fc.oneof(
      fc.constant<Step>({ kind: "push" }),
      fc.constant<Step>({ kind: "add" }),
      fc.nat().map<Step>((pick) => ({ kind: "remove", pick })),
      fc.constant<Step>({ kind: "tick" }),
      fc.nat().map<Step>((pick) => ({ kind: "busy", pick })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 400 }), fc.integer({ min: 0, max: 300 }), (steps, crowd) => {
        const fanout = new Fanout<string>();
        const { send, busy, ids } = recorder();
        // A crowd makes the schedule use several groups.
        for (let i = 0; i < crowd; i++) fanout.add(`crowd${i}`, 0);
        let seq = 0;
        let next = 0;
        const live: { name: string; joinedAfter: number }[] = [];
        for (const s of steps) {
          if (s.kind === "push") fanout.push(event(++seq));
          else if (s.kind === "add") {
            const name = `m${next++}`;
            fanout.add(name, seq);
            live.push({ name, joinedAfter: seq });
          } else if (s.kind === "remove" && live.length > 0) {
            const [gone] = live.splice(s.pick % live.length, 1);
            if (gone) fanout.remove(gone.name);
          } else if (s.kind === "tick") fanout.tick(send);
          else if (s.kind === "busy" && live.length > 0) {
            const name = (live[s.pick % live.length] as { name: string }).name;
            if (!busy.delete(name)) busy.add(name);
          }
        }
        busy.clear();
        while (fanout.tick(send));
        const expected = (after: number) => Array.from({ length: seq - after }, (_, i) => after + i + 1);
        for (const m of live) expect(ids(m.name)).toEqual(expected(m.joinedAfter));
        for (let i = 0; i < crowd; i++) expect(ids(`crowd${i}`)).toEqual(expected(0));
      }),
      { numRuns: 150 },
    );
  });
});
