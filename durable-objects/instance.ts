import { DurableObject } from "cloudflare:workers";
import { getDb } from "../src/db/client";
import { bytesToHex, hexToBytes } from "../src/lib/hex";
import { newId } from "../src/lib/ids";
import { COLLECTED_EVENT_TYPES, EventCollector } from "../src/runtime/collector";
import { EventLog } from "../src/runtime/event-log";
import { Fanout, nextTickDue, sseMessages } from "../src/runtime/fanout";
import { type InstanceMail, InstanceMailbox, type UserMailInput } from "../src/runtime/mailbox";
import type {
  ConnectorState,
  HarnessConfig,
  InferenceEvent,
  InferenceSource,
  InstanceHubFrame,
  InstanceSidecarFrame,
  WireGrantRule,
} from "../src/runtime/protocol";
import { HEARTBEAT_INTERVAL_MS } from "../src/runtime/protocol";

/** Lifecycle of the instance as this object sees it. */
type Phase = "new" | "deploying" | "running" | "stopped";

type Setup = {
  config: HarnessConfig;
  tenantId: string;
  instanceId: string;
  sidecarId: string | null;
  hubPublicKey: string;
};

type SocketState = { verified: boolean; nonce: string | null };

/** One SSE client's stream. */
type Subscriber = {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  closed: boolean;
  /** Drops the subscriber when a write fails; made once, not a closure per write. */
  dropOnError: () => void;
};

/** Retention of the replayable event log (docs/events.md). */
export const EVENT_LOG_MAX_EVENTS = 10_000;
export const EVENT_LOG_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Frames kept for a sidecar that is away. */
const QUEUE_MAX_FRAMES = 1_000;
const QUEUE_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const REQUEST_TIMEOUT_MS = 30_000;
const SSE_RETRY_MS = 3_000;
/** A subscriber this far behind (bytes queued) is dropped rather than buffered without bound. */
const MAX_SUBSCRIBER_BACKLOG = 8 * 1024 * 1024;

/** Frames that are kept for a sidecar that is away, and delivered after it proves itself. */
const QUEUEABLE = new Set(["mail.inbound", "grants.update", "sources.update", "sync.request", "session.abort"]);

const encoder = new TextEncoder();

type Waiter = { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: ReturnType<typeof setTimeout> };

/**
 * One Durable Object per agent instance: the sidecar's channel for it (hibernating WebSocket), the event
 * collector (turns and parts in D1), the replayable event log with per-instance sequence numbers, the SSE
 * fan-out, runtime status, connector state, frames queued while the sidecar is away, and the instance's
 * mail signing key.
 */
export class InstanceObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The live SSE subscribers. */
  private readonly fanout = new Fanout<Subscriber>();
  private readonly waiters = new Map<string, Waiter>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the next fan-out tick is due (`nextTickDue`); in the past while the stream is quiet. */
  private tickDue = 0;
  /** When the newest event was recorded: every live subscriber has been written to since (or joined since). */
  private lastEventAt = 0;
  private readonly log: EventLog;
  /** The collector moved without writing D1; its saved state is brought up to date on the next tick. */
  private collectorDirty = false;
  private collector: EventCollector | null = null;
  /** Written once, at launch; kept in memory because every frame from the sidecar reads it. */
  private setupKept: Setup | undefined;
  /** Set synchronously by the first `stop`, so a concurrent one cannot start a second undeploy. */
  private stopping = false;
  /** Frames from the sidecar are handled one at a time, in arrival order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.log = new EventLog(this.sql, { maxEvents: EVENT_LOG_MAX_EVENTS, maxAgeMs: EVENT_LOG_MAX_AGE_MS });
    this.sql.exec(
      `create table if not exists outbox (id integer primary key autoincrement, frame text not null, at integer not null)`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // State helpers
  // -------------------------------------------------------------------------------------------

  private async setup(): Promise<Setup | undefined> {
    this.setupKept ??= await this.ctx.storage.get<Setup>("setup");
    return this.setupKept;
  }

  private async phase(): Promise<Phase> {
    return (await this.ctx.storage.get<Phase>("phase")) ?? "new";
  }

  private async loadCollector(): Promise<EventCollector | null> {
    if (this.collector) return this.collector;
    const state = await this.ctx.storage.get<ReturnType<EventCollector["serializeState"]>>("collector");
    this.collector = state ? EventCollector.restoreState(state) : null;
    return this.collector;
  }

  private async saveCollector(): Promise<void> {
    this.collectorDirty = false;
    if (this.collector) await this.ctx.storage.put("collector", this.collector.serializeState());
  }

  private socket(): WebSocket | null {
    return this.ctx.getWebSockets("sidecar")[0] ?? null;
  }

  private verifiedSocket(): WebSocket | null {
    const ws = this.socket();
    if (!ws) return null;
    const state = ws.deserializeAttachment() as SocketState | null;
    return state?.verified ? ws : null;
  }

  private sendNow(ws: WebSocket, frame: InstanceHubFrame): boolean {
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a frame, or keeps it for the sidecar's return when it is queueable. */
  private deliver(frame: InstanceHubFrame): "sent" | "queued" | "dropped" {
    const ws = this.verifiedSocket();
    if (ws && this.sendNow(ws, frame)) return "sent";
    if (!QUEUEABLE.has(frame.type)) return "dropped";
    const now = Date.now();
    this.sql.exec("insert into outbox (frame, at) values (?, ?)", JSON.stringify(frame), now);
    this.sql.exec(
      "delete from outbox where at < ? or id <= (select max(id) from outbox) - ?",
      now - QUEUE_MAX_AGE_MS,
      QUEUE_MAX_FRAMES,
    );
    return "queued";
  }

  /** Sends what was kept, in order; mail kept as `pending` becomes `delivered`. */
  private async flushOutbox(ws: WebSocket): Promise<void> {
    const rows = this.sql.exec<{ id: number; frame: string }>("select id, frame from outbox order by id").toArray();
    const delivered: string[] = [];
    for (const row of rows) {
      const frame = JSON.parse(row.frame) as InstanceHubFrame;
      if (!this.sendNow(ws, frame)) break;
      this.sql.exec("delete from outbox where id = ?", row.id);
      if (frame.type === "mail.inbound") delivered.push(frame.mailId);
    }
    if (delivered.length > 0) await this.mailbox().markDelivered(getDb(this.env), delivered);
  }

  private wait<T>(key: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`The sidecar did not answer in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.set(key, { resolve: resolve as (v: unknown) => void, reject, timer });
    });
  }

  private settle(key: string, error: Error | null, value?: unknown): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }

  // -------------------------------------------------------------------------------------------
  // Event log and SSE
  // -------------------------------------------------------------------------------------------

  /** Appends an event with the next sequence number; a tick persists it and sends it. */
  private record(type: string, data: unknown): number {
    const event = this.log.append(type, JSON.stringify(data ?? {}));
    this.fanout.push(event);
    this.lastEventAt = Date.now();
    this.scheduleTick();
    return event.seq;
  }

  /** The next tick runs when it is due: at once when the stream was quiet. */
  private scheduleTick(): void {
    if (this.tickTimer) return;
    this.tickTimer = setTimeout(() => this.tick(), Math.max(0, this.tickDue - Date.now()));
  }

  /**
   * Persists what was recorded and sends it to the next group of subscribers, in one synchronous step (the
   * output gate then releases the frames only once their rows are durable). Ticks go on while some
   * subscriber lacks events.
   */
  private tick(): void {
    this.tickTimer = null;
    this.tickDue = nextTickDue(this.tickDue, Date.now(), this.fanout.schedule().tickMs);
    this.persistRecorded();
    if (this.fanout.tick((sub, bytes) => this.send(sub, bytes))) this.scheduleTick();
  }

  /** Writes the events numbered since the last tick, and the collector state that moved with them. */
  private persistRecorded(): void {
    this.log.persist();
    if (this.collectorDirty) this.saveCollector().catch(() => {});
  }

  private send(sub: Subscriber, bytes: Uint8Array): void {
    if (sub.closed) return;
    // The writable side counts bytes: below zero, the client is MAX_SUBSCRIBER_BACKLOG behind.
    if ((sub.writer.desiredSize ?? 0) < 0) {
      this.drop(sub);
      return;
    }
    sub.writer.write(bytes).catch(sub.dropOnError);
  }

  private drop(sub: Subscriber): void {
    if (sub.closed) return;
    this.release(sub);
    sub.writer.abort().catch(() => {});
  }

  /** A subscriber leaves the fan-out; the heartbeat stops with the last one. */
  private release(sub: Subscriber): void {
    sub.closed = true;
    this.fanout.remove(sub);
    if (this.fanout.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }

  private async openStream(cursor: number | null): Promise<Response> {
    // workerd's native byte pipe: chunks reach the response without a JavaScript stream in between (in the
    // SSE benchmark this costs 20-60 % less CPU per delivered event). Its writer counts bytes: desiredSize
    // goes below zero once more than MAX_SUBSCRIBER_BACKLOG bytes wait unread.
    const { readable, writable } = new IdentityTransformStream({ highWaterMark: MAX_SUBSCRIBER_BACKLOG });
    const sub: Subscriber = { writer: writable.getWriter(), closed: false, dropOnError: () => this.drop(sub) };
    const collector = await this.loadCollector();
    const stopped = (await this.phase()) === "stopped";
    // From here to `add`, nothing awaits: the replay and the live stream meet without a gap or a repeat.
    let replay = `retry: ${SSE_RETRY_MS}\n\n`;
    if (cursor !== null) {
      const oldest = this.log.oldestSeq();
      if (oldest !== null && cursor < oldest - 1) {
        const expired = JSON.stringify({
          type: "cursor_expired",
          data: {
            cursor,
            oldestAvailable: oldest,
            message: "Events after this cursor are no longer kept; reload history over REST",
          },
        });
        replay += `event: agent.event\ndata: ${expired}\n\n`;
      }
      replay += sseMessages(this.log.since(cursor));
    } else if (collector && collector.status !== "idle" && collector.currentTurnId) {
      // A new subscriber joins mid-turn: the text so far, then the live deltas.
      const text = JSON.stringify({
        type: "inference.text.replay",
        data: { turnId: collector.currentTurnId, text: collector.accumulatedText, throughSeq: this.log.lastSeq() },
      });
      replay += `event: agent.event\ndata: ${text}\n\n`;
    }
    this.send(sub, encoder.encode(replay));
    if (stopped) {
      sub.writer.close().catch(() => {});
    } else {
      this.fanout.add(sub, this.log.lastSeq());
      this.heartbeat ??= setInterval(() => {
        // Only idle streams need one; writing every subscriber at once would also stall live delivery.
        if (Date.now() - this.lastEventAt < HEARTBEAT_INTERVAL_MS) return;
        const ping = encoder.encode(": heartbeat\n\n");
        for (const s of this.fanout.sinks()) this.send(s, ping);
      }, HEARTBEAT_INTERVAL_MS);
    }
    return new Response(readable, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  }

  private closeSubscribers(): void {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    this.persistRecorded();
    this.fanout.drain((sub, bytes) => this.send(sub, bytes));
    for (const sub of this.fanout.sinks()) {
      this.release(sub);
      sub.writer.close().catch(() => {});
    }
  }

  // -------------------------------------------------------------------------------------------
  // HTTP entry: the sidecar's WebSocket and SSE subscriptions (the Worker authenticated both)
  // -------------------------------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/events") {
      const raw = request.headers.get("last-event-id") ?? url.searchParams.get("cursor");
      const cursor = raw !== null && /^\d{1,15}$/.test(raw) ? Number(raw) : null;
      return this.openStream(cursor);
    }
    if (url.pathname === "/connect") return this.acceptSidecar();
    return new Response("not found", { status: 404 });
  }

  private async acceptSidecar(): Promise<Response> {
    const phase = await this.phase();
    if (phase === "stopped" || phase === "new") return new Response("instance is not live", { status: 410 });
    for (const old of this.ctx.getWebSockets("sidecar")) old.close(4000, "replaced by a new connection");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["sidecar"]);
    const setup = (await this.setup()) as Setup;
    const publicKey = await this.ctx.storage.get<string>("publicKey");
    if (!publicKey) {
      // First contact: deploy.
      server.serializeAttachment({ verified: true, nonce: null } satisfies SocketState);
      this.sendNow(server, {
        type: "agent.deploy",
        agentAddress: setup.config.agentAddress,
        agentId: setup.config.agentId,
        config: setup.config,
        hubPublicKey: setup.hubPublicKey,
      });
    } else {
      const nonce = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
      server.serializeAttachment({ verified: false, nonce } satisfies SocketState);
      this.sendNow(server, { type: "challenge", agentAddress: setup.config.agentAddress, nonce });
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    let frame: InstanceSidecarFrame;
    try {
      frame = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message));
      if (typeof frame !== "object" || frame === null || typeof frame.type !== "string") return;
    } catch {
      return;
    }
    const run = this.chain.then(() => this.handle(ws, frame));
    this.chain = run.catch((err) => console.error("instance frame failed", frame.type, err));
    await run.catch(() => {});
  }

  private async handle(ws: WebSocket, frame: InstanceSidecarFrame): Promise<void> {
    const setup = await this.setup();
    if (!setup) return;
    const state = (ws.deserializeAttachment() as SocketState | null) ?? { verified: false, nonce: null };
    if (frame.type === "ping") {
      this.sendNow(ws, { type: "pong" });
      return;
    }
    if (!state.verified) {
      if (frame.type === "challenge.response") await this.checkChallenge(ws, setup, state, frame.signature);
      return;
    }
    const db = getDb(this.env);
    switch (frame.type) {
      case "agent.deploy.ack": {
        await this.ctx.storage.put("publicKey", frame.publicKey);
        await this.mailbox().recordPublicKey(db, setup.instanceId, frame.publicKey);
        this.sendNow(ws, { type: "session.start", agentAddress: setup.config.agentAddress });
        break;
      }
      case "session.start.ack": {
        await this.ctx.storage.put("phase", "running" satisfies Phase);
        await this.mailbox().markRunning(db, setup.instanceId);
        this.record("instance.running", { instanceId: setup.instanceId });
        this.settle("launch", null, true);
        break;
      }
      case "agent.error": {
        this.settle("launch", new Error(frame.error || "The sidecar could not deploy the instance"));
        break;
      }
      case "session.ack":
        this.settle(frame.requestId, null, true);
        break;
      case "session.error":
        this.settle(frame.requestId, new Error(frame.error || "The sidecar refused the request"));
        break;
      case "agent.undeploy.ack":
        this.settle("undeploy", null, frame.statePushed);
        break;
      case "agent.event":
        await this.onEvent(setup, frame.event);
        break;
      case "connector.state.changed":
        await this.ctx.storage.put("connectorState", frame.connectorState);
        break;
      case "mail.outbound":
        await this.onOutboundMail(setup, frame.rawMessage, frame.recipients);
        break;
      default:
        break;
    }
  }

  private async checkChallenge(ws: WebSocket, setup: Setup, state: SocketState, signature: string): Promise<void> {
    const publicKey = await this.ctx.storage.get<string>("publicKey");
    let ok = false;
    if (publicKey && state.nonce && /^[0-9a-f]+$/i.test(signature) && signature.length === 128) {
      try {
        const key = await crypto.subtle.importKey("raw", hexToBytes(publicKey), { name: "Ed25519" }, false, ["verify"]);
        const message = new Uint8Array([...hexToBytes(state.nonce), ...encoder.encode(setup.config.agentAddress)]);
        ok = await crypto.subtle.verify({ name: "Ed25519" }, key, hexToBytes(signature), message);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      this.sendNow(ws, {
        type: "challenge.failed",
        agentAddress: setup.config.agentAddress,
        reason: "invalid signature",
      });
      ws.close(4003, "challenge failed");
      return;
    }
    ws.serializeAttachment({ verified: true, nonce: null } satisfies SocketState);
    const db = getDb(this.env);
    const refreshed = await this.mailbox().currentGrantsAndSources(db, setup);
    this.sendNow(ws, {
      type: "grants.update",
      requestId: crypto.randomUUID(),
      agentAddress: setup.config.agentAddress,
      grants: refreshed.grants,
    });
    if (refreshed.sources) {
      this.sendNow(ws, {
        type: "sources.update",
        requestId: crypto.randomUUID(),
        agentAddress: setup.config.agentAddress,
        sources: refreshed.sources,
        defaultSource: refreshed.sources[0]?.id ?? setup.config.defaultSource,
      });
    }
    await this.flushOutbox(ws);
    await this.ctx.storage.put("phase", "running" satisfies Phase);
    this.record("sidecar.reconnected", { instanceId: setup.instanceId });
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    await this.sidecarLost(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.sidecarLost(ws);
  }

  /** The sidecar is gone: a running turn cannot finish, so it is failed now, and the stream says so. */
  private async sidecarLost(ws: WebSocket): Promise<void> {
    if (this.ctx.getWebSockets("sidecar").some((other) => other !== ws)) return;
    const run = this.chain.then(async () => {
      const setup = await this.setup();
      if (!setup || (await this.phase()) === "stopped") return;
      const collector = await this.loadCollector();
      if (collector?.currentTurnId) {
        const turnId = collector.currentTurnId;
        await collector.abandon(getDb(this.env), "sidecar_disconnected", "The sidecar disconnected during the turn");
        await this.saveCollector();
        this.record("turn.failed", { turnId, reason: "sidecar_disconnected" });
      }
      this.record("sidecar.disconnected", { instanceId: setup.instanceId });
      this.settle("launch", new Error("The sidecar disconnected"));
    });
    this.chain = run.catch(() => {});
    await run.catch(() => {});
  }

  private async onEvent(setup: Setup, event: InferenceEvent): Promise<void> {
    if (typeof event !== "object" || event === null || typeof event.type !== "string") return;
    let collector = await this.loadCollector();
    if (!collector || collector.ended) {
      collector = EventCollector.create({
        instanceId: setup.instanceId,
        sessionId: setup.config.sessionId,
        tenantId: setup.tenantId,
      });
      this.collector = collector;
    }
    // Streamed to subscribers first: the D1 write of a part must not delay the token on the wire.
    this.record(event.type, event.data ?? {});
    if (!COLLECTED_EVENT_TYPES.has(event.type)) return;
    const result = await collector.apply(getDb(this.env), event);
    // State that matches rows just written to D1 is saved at once; a text delta waits for the tick.
    if (result.wrote) await this.saveCollector();
    else this.collectorDirty = true;
    if (result.committed) this.record("turn.committed", result.committed);
    if (result.statusChanged) this.record("runtime.status", { status: result.status });
  }

  // -------------------------------------------------------------------------------------------
  // Mail (the mailbox module does the MIME and D1 work; this object owns keys, delivery and events)
  // -------------------------------------------------------------------------------------------

  private mailbox(): InstanceMailbox {
    return new InstanceMailbox(this.env, this.ctx.storage);
  }

  private async onOutboundMail(setup: Setup, rawBase64: string, recipients: string[]): Promise<void> {
    const db = getDb(this.env);
    const stored = await this.mailbox().storeOutbound(db, setup, rawBase64);
    if (!stored) return;
    this.record("mail.delivered", stored.email);
    for (const recipient of recipients) {
      const target = await this.mailbox().instanceByAddress(db, setup.tenantId, recipient);
      if (!target || target.id === setup.instanceId) continue;
      const stub = this.env.INSTANCE.get(this.env.INSTANCE.idFromName(target.id));
      await stub.receiveAgentMail(stored.raw).catch((err: unknown) => console.error("agent mail delivery failed", err));
    }
  }

  // -------------------------------------------------------------------------------------------
  // RPC from the Worker
  // -------------------------------------------------------------------------------------------

  /** Starts serving a launched instance and waits until the sidecar has started it. */
  async launch(setup: Setup, timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ ok: true } | { ok: false; error: string }> {
    await this.ctx.storage.put("setup", setup);
    this.setupKept = setup;
    await this.ctx.storage.put("phase", "deploying" satisfies Phase);
    this.collector = EventCollector.create({
      instanceId: setup.instanceId,
      sessionId: setup.config.sessionId,
      tenantId: setup.tenantId,
    });
    await this.saveCollector();
    this.record("instance.launched", { instanceId: setup.instanceId, sidecarId: setup.sidecarId });
    const started = this.wait<boolean>("launch", timeoutMs);
    if (setup.sidecarId) {
      const sidecar = this.env.SIDECAR.get(this.env.SIDECAR.idFromName(setup.sidecarId));
      const assigned = await sidecar.assign(setup.instanceId, setup.config.agentAddress);
      if (!assigned) this.settle("launch", new Error("The sidecar is not connected"));
    }
    try {
      await started;
      return { ok: true };
    } catch (err) {
      await this.ctx.storage.put("phase", "stopped" satisfies Phase);
      for (const ws of this.ctx.getWebSockets("sidecar")) ws.close(4010, "launch failed");
      return { ok: false, error: (err as Error).message };
    }
  }

  /** What `GET …/instances/:id` and `/health` show. */
  async runtime(): Promise<{ phase: Phase; connected: boolean; runtimeStatus: string | null; lastEventSeq: number }> {
    const collector = await this.loadCollector();
    const last = this.log.lastSeq();
    return {
      phase: await this.phase(),
      connected: this.verifiedSocket() !== null,
      runtimeStatus: collector && !collector.ended ? collector.status : collector ? "idle" : null,
      lastEventSeq: last,
    };
  }

  async connectorState(): Promise<ConnectorState> {
    return (await this.ctx.storage.get<ConnectorState>("connectorState")) ?? null;
  }

  async mailPublicKey(): Promise<string> {
    return this.mailbox().publicKeyArmored();
  }

  /** A user's mail: signed, delivered (or queued while the sidecar is away), stored, streamed. */
  async sendUserMail(input: UserMailInput): Promise<InstanceMail> {
    const setup = await this.setup();
    if (!setup) throw new Error("Instance is not set up");
    const connector = await this.connectorState();
    const built = await this.mailbox().buildUserMail(input, setup, connector);
    const outcome = this.deliver({
      type: "mail.inbound",
      agentAddress: setup.config.agentAddress,
      mailId: input.mailId,
      rawMessage: built.base64,
    });
    if (outcome === "dropped") throw new Error("The instance cannot receive mail now");
    const stored = await this.mailbox().storeInbound(
      getDb(this.env),
      setup,
      input.mailId,
      built.raw,
      outcome === "sent",
    );
    this.record("mail.delivered", stored.email);
    return stored;
  }

  /** Mail from another agent instance of the tenant. */
  async receiveAgentMail(raw: Uint8Array): Promise<void> {
    const setup = await this.setup();
    if (!setup || (await this.phase()) === "stopped") return;
    const mailId = newId("sessionMail");
    const outcome = this.deliver({
      type: "mail.inbound",
      agentAddress: setup.config.agentAddress,
      mailId,
      rawMessage: btoa(Array.from(raw, (b) => String.fromCharCode(b)).join("")),
    });
    const stored = await this.mailbox().storeInbound(getDb(this.env), setup, mailId, raw, outcome === "sent");
    this.record("mail.delivered", stored.email);
  }

  /** The kill switch: the sidecar stops the current turn. Failures are answers, not exceptions (RPC). */
  async abort(reason: string): Promise<{ ok: true } | { ok: false; error: string }> {
    const setup = await this.setup();
    const ws = this.verifiedSocket();
    if (!setup || !ws) return { ok: false, error: "The sidecar is not connected" };
    const requestId = crypto.randomUUID();
    const answered = this.wait(requestId);
    this.sendNow(ws, {
      type: "session.abort",
      requestId,
      agentAddress: setup.config.agentAddress,
      reason: reason as never,
    });
    try {
      await answered;
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    this.record("session.aborted", { reason });
    return { ok: true };
  }

  /** Asks the sidecar to push its state now (or when it is back). */
  async sync(): Promise<"sent" | "queued"> {
    const setup = await this.setup();
    if (!setup) throw new Error("Instance is not set up");
    const outcome = this.deliver({
      type: "sync.request",
      agentAddress: setup.config.agentAddress,
      transferId: `sync-${Date.now()}`,
    });
    return outcome === "sent" ? "sent" : "queued";
  }

  /** New grants or sources for a running instance, at once (or on its return). */
  async pushGrants(grants: WireGrantRule[]): Promise<void> {
    const setup = await this.setup();
    if (!setup || (await this.phase()) === "stopped") return;
    this.deliver({
      type: "grants.update",
      requestId: crypto.randomUUID(),
      agentAddress: setup.config.agentAddress,
      grants,
    });
  }

  async pushSources(sources: InferenceSource[], defaultSource: string): Promise<void> {
    const setup = await this.setup();
    if (!setup || (await this.phase()) === "stopped") return;
    this.deliver({
      type: "sources.update",
      requestId: crypto.randomUUID(),
      agentAddress: setup.config.agentAddress,
      sources,
      defaultSource,
    });
  }

  /**
   * Stops the instance: the sidecar undeploys it (when connected), the stream ends. Only the first of
   * concurrent calls does it; the others learn it was already stopping.
   */
  async stop(reason: string): Promise<{ stopped: boolean; statePushed: boolean }> {
    if (this.stopping) return { stopped: false, statePushed: false };
    this.stopping = true;
    if ((await this.phase()) === "stopped") return { stopped: false, statePushed: false };
    const setup = await this.setup();
    let statePushed = false;
    const ws = this.verifiedSocket();
    if (setup && ws) {
      const acked = this.wait<boolean>("undeploy", 10_000);
      this.sendNow(ws, { type: "agent.undeploy", agentAddress: setup.config.agentAddress, reason });
      statePushed = await acked.catch(() => false);
    } else if (setup?.sidecarId) {
      const sidecar = this.env.SIDECAR.get(this.env.SIDECAR.idFromName(setup.sidecarId));
      await sidecar.revoke(setup.instanceId, reason).catch(() => {});
    }
    const collector = await this.loadCollector();
    if (collector?.currentTurnId) {
      await collector.abandon(getDb(this.env), "instance_stopped", "The instance was stopped during the turn");
      await this.saveCollector();
    }
    await this.ctx.storage.put("phase", "stopped" satisfies Phase);
    this.sql.exec("delete from outbox");
    this.record("session.ended", { reason });
    this.closeSubscribers();
    for (const socket of this.ctx.getWebSockets("sidecar")) socket.close(4010, "instance stopped");
    return { stopped: true, statePushed };
  }
}
