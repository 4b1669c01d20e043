/**
 * Requests to the sidecar that wait for its answer: a launch for `session.start.ack`, an abort for its
 * `session.ack`, an undeploy for its ack. Each waits under a key until the answering frame settles it, or
 * fails when the sidecar stays silent for the timeout.
 */
type Waiter = { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: ReturnType<typeof setTimeout> };

export class ReplyWaiters {
  private readonly waiting = new Map<string, Waiter>();

  /** Waits for `settle(key, …)`; rejects after `timeoutMs`. A second wait on a key replaces the first. */
  wait<T>(key: string, timeoutMs: number): Promise<T> {
    this.settle(key, new Error("Replaced by a newer request"));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`The sidecar did not answer in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting.set(key, { resolve: resolve as (value: unknown) => void, reject, timer });
    });
  }

  /** Answers the wait on `key`, if any: with `error`, or else with `value`. */
  settle(key: string, error: Error | null, value?: unknown): void {
    const waiter = this.waiting.get(key);
    if (!waiter) return;
    this.waiting.delete(key);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }
}
