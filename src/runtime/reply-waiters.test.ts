import { describe, expect, it } from "vitest";
import { ReplyWaiters } from "./reply-waiters";

describe("ReplyWaiters", () => {
  it("resolves a wait with the settled value, once", async () => {
    const waiters = new ReplyWaiters();
    const answer = waiters.wait<number>("a", 1_000);
    waiters.settle("a", null, 42);
    waiters.settle("a", new Error("too late"));
    await expect(answer).resolves.toBe(42);
  });

  it("rejects a wait settled with an error, and leaves other keys alone", async () => {
    const waiters = new ReplyWaiters();
    const failed = waiters.wait("a", 1_000);
    const other = waiters.wait<string>("b", 1_000);
    waiters.settle("a", new Error("refused"));
    waiters.settle("b", null, "ok");
    await expect(failed).rejects.toThrow("refused");
    await expect(other).resolves.toBe("ok");
  });

  it("rejects when nothing answers in time", async () => {
    const waiters = new ReplyWaiters();
    await expect(waiters.wait("slow", 20)).rejects.toThrow("did not answer in 0.02 s");
    // Settling after the timeout is a no-op.
    waiters.settle("slow", null, 1);
  });

  it("a second wait on the same key replaces the first, which fails", async () => {
    const waiters = new ReplyWaiters();
    const first = waiters.wait("launch", 1_000);
    const second = waiters.wait<boolean>("launch", 1_000);
    waiters.settle("launch", null, true);
    await expect(first).rejects.toThrow("Replaced");
    await expect(second).resolves.toBe(true);
  });
});
