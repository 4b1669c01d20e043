/**
 * Inference events into turns: every event goes out on the live stream first, then the collector writes
 * the turn's rows and says when a turn committed or the runtime status changed, which become events too.
 * A turn the sidecar can no longer finish (it left, the instance stopped) is failed, never left running.
 */
import { getDb } from "../db/client";
import { COLLECTED_EVENT_TYPES, type RuntimeStatus, type SettledUsage } from "./collector";
import { hubLog } from "./instance-logs";
import type { InstanceSetup, InstanceState } from "./instance-state";
import type { LiveEvents, TurnInFlight } from "./live-events";
import { type Charge, chargeModelCall } from "./metering";
import type { InferenceEvent } from "./protocol";

export class TurnRecorder {
  constructor(
    private readonly env: Env,
    private readonly state: InstanceState,
    private readonly events: LiveEvents,
  ) {}

  /** Returns what the model call that the event ended cost, when it ended one. */
  async record(setup: InstanceSetup, event: InferenceEvent): Promise<Charge | null> {
    if (typeof event !== "object" || event === null || typeof event.type !== "string") return null;
    const current = await this.state.collector();
    const collector = !current || current.ended ? this.state.newCollector(setup) : current;
    // Streamed to subscribers first: the D1 write of a part must not delay the token on the wire.
    const seq = this.events.record(event.type, event.data ?? {});
    if (!COLLECTED_EVENT_TYPES.has(event.type)) return null;
    const db = getDb(this.env);
    const before = collector.currentTurnId;
    // A turn that starts afresh (not the next step of a tool loop) continues the last mail's trace.
    const trace = event.type === "inference.start" && !before ? await this.state.takeTraceContext() : null;
    const result = await collector.apply(db, event, new Date(), trace);
    const opened = collector.currentTurnId;
    // Where the turn begins in the log: replaying after `cursor` shows it from its first event.
    if (opened && opened !== before) this.events.record("turn.started", { turnId: opened, cursor: seq - 1 });
    // State that matches rows just written to D1 is saved at once; a text delta waits for the tick.
    if (result.wrote) await this.state.saveCollector();
    else this.state.markCollectorDirty();
    const charge = result.settled ? await this.charge(setup, result.settled) : null;
    if (result.committed) this.events.record("turn.committed", result.committed);
    if (result.committed?.status === "failed") {
      const { turnId, errors } = result.committed;
      const why = errors.map((e) => `${e.category}: ${e.message}`).join("; ");
      await hubLog(this.env, setup, "error", `Turn ${turnId} failed: ${why || "unknown error"}`, { turnId, errors });
    }
    if (result.statusChanged) this.events.record("runtime.status", { status: result.status });
    return charge;
  }

  /** Debits a settled model call and tells the stream what it cost. */
  private async charge(setup: InstanceSetup, settled: SettledUsage): Promise<Charge> {
    const charge = await chargeModelCall(getDb(this.env), setup, settled);
    if (charge.outcome === "charged") {
      this.events.record("usage.charged", {
        turnId: settled.turnId,
        walletId: setup.walletId,
        amount: charge.amount,
        transactionId: charge.transactionId,
        usage: settled.usage,
      });
      await hubLog(this.env, setup, "info", `Charged ${charge.amount} to wallet ${setup.walletId} for a model call`, {
        turnId: settled.turnId,
        walletId: setup.walletId,
        amount: charge.amount,
        transactionId: charge.transactionId,
      });
    }
    return charge;
  }

  /** The turn a subscriber joining now comes in the middle of, with its text so far. */
  async inFlight(): Promise<TurnInFlight | null> {
    const collector = await this.state.collector();
    const turnId = collector && collector.status !== "idle" ? collector.currentTurnId : null;
    return collector && turnId ? { turnId, text: collector.accumulatedText } : null;
  }

  /** `idle`, `busy` or `waiting_approval`; null before the first launch. */
  async runtimeStatus(): Promise<RuntimeStatus | null> {
    const collector = await this.state.collector();
    if (!collector) return null;
    return collector.ended ? "idle" : collector.status;
  }

  /**
   * Ends the turn in flight, if any, as failed with `reason`, whatever the sidecar sends about it later
   * (its parts find no open turn), and tells the stream: `turn.failed`, then `runtime.status` idle.
   */
  async end(reason: string, message: string): Promise<void> {
    const wasIdle = (await this.runtimeStatus()) === "idle";
    const turnId = await this.abandon(reason, message);
    if (turnId) this.events.record("turn.failed", { turnId, reason });
    const setup = await this.state.setup();
    if (turnId && setup)
      await hubLog(this.env, setup, "error", `Turn ${turnId} failed: ${message}`, { turnId, reason });
    if (turnId && !wasIdle) this.events.record("runtime.status", { status: "idle" });
  }

  /** Fails the turn in flight, if any, with `reason`, and charges what its model call used; returns its id. */
  async abandon(reason: string, message: string): Promise<string | null> {
    const collector = await this.state.collector();
    const turnId = collector?.currentTurnId;
    if (!collector || !turnId) return null;
    const abandoned = await collector.abandon(getDb(this.env), reason, message);
    await this.state.saveCollector();
    const setup = await this.state.setup();
    if (abandoned?.settled && setup) await this.charge(setup, abandoned.settled);
    return turnId;
  }
}
