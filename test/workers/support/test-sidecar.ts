/**
 * A sidecar protocol client for tests inside workerd (docs/sidecar-protocol.md): it opens the real
 * channels through the Worker entry (`exports.default.fetch` with a WebSocket upgrade), answers the hub
 * the way a sidecar must (ready, deploy ack with its own Ed25519 key, start ack, challenge signatures,
 * abort and undeploy acks), records every frame it receives, and lets a test send frames or drop and
 * reopen an instance channel. It talks only the wire protocol; nothing of the hub is replaced.
 */
import { exports } from "cloudflare:workers";

export type Frame = { type: string; [field: string]: any };

const HUB = "http://hub.test";
const DEFAULT_WAIT_MS = 10_000;
const PING_INTERVAL_MS = 10_000;

const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
const toBase64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/** Opens a sidecar channel; the socket is null when the hub refused the upgrade. */
export async function upgrade(
  path: string,
  secret?: string,
): Promise<{ status: number; ws: WebSocket | null; body: any }> {
  const headers: Record<string, string> = { upgrade: "websocket" };
  if (secret !== undefined) headers.authorization = `Bearer ${secret}`;
  const res = await exports.default.fetch(new Request(`${HUB}${path}`, { headers }));
  if (!res.webSocket) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: res.status, ws: null, body };
  }
  res.webSocket.accept();
  return { status: res.status, ws: res.webSocket, body: null };
}

type Waiter = { predicate: (f: Frame) => boolean; resolve: (f: Frame) => void };

/** Every frame a channel received, in order, with waiting for the next one that matches. */
export class FrameLog {
  readonly frames: Frame[] = [];
  private waiters: Waiter[] = [];

  push(frame: Frame): void {
    this.frames.push(frame);
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate(frame)) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(frame);
      }
    }
  }

  ofType(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  /** The first frame from index `from` on that matches (already received or still to come). */
  waitFor(predicate: (f: Frame) => boolean, what: string, from = 0, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    const seen = this.frames.slice(from).find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`Timed out waiting for ${what}; received: ${this.frames.map((f) => f.type).join(", ")}`));
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      this.waiters.push(waiter);
    });
  }

  next(type: string, from = 0, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    return this.waitFor((f) => f.type === type, `a "${type}" frame`, from, timeoutMs);
  }
}

function listen(ws: WebSocket, log: FrameLog, onFrame: (frame: Frame) => Promise<void> | void) {
  let chain = Promise.resolve();
  ws.addEventListener("message", (event) => {
    let frame: Frame;
    try {
      frame = JSON.parse(typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data));
    } catch {
      return;
    }
    log.push(frame);
    // Answers go out in the order the frames came, even when one needs crypto first.
    chain = chain.then(() => onFrame(frame)).catch((err) => console.error("test sidecar frame failed", err));
  });
}

function sendOn(ws: WebSocket | null, frame: Frame): void {
  if (!ws) throw new Error("The channel is not open");
  ws.send(JSON.stringify(frame));
}

export type Answers = {
  /** `agent.deploy`: ack with a fresh key, answer `agent.error`, or say nothing. */
  deploy: "ack" | "error" | "silent";
  /** `session.abort`: `session.ack`, `session.error`, or nothing. */
  abort: "ack" | "error" | "silent";
};

/** One instance channel (`/api/sidecars/instances/:id/connect`), as the sidecar holds it. */
export class TestInstanceChannel {
  log = new FrameLog();
  ws: WebSocket | null = null;
  /** Status of the last upgrade (101 when the hub accepted it). */
  upgradeStatus = 0;
  upgradeBody: any = null;
  closeEvents: { code: number; reason: string }[] = [];
  keys: CryptoKeyPair | null = null;
  publicKeyHex: string | null = null;
  config: Frame | null = null;
  /** The deploy commit the hub shipped, sent back on reconnect; set it to null to act as a sidecar that lost it. */
  deployRef: string | null = null;
  private seq = 0;

  constructor(
    readonly instanceId: string,
    readonly agentAddress: string,
    readonly path: string,
    private readonly secret: string,
    private readonly answers: Answers,
  ) {}

  get sessionId(): string {
    return this.config?.sessionId ?? "";
  }

  /** Opens (or reopens) the channel; frames from the hub are answered as a sidecar does. */
  async open(): Promise<number> {
    const opened = await upgrade(this.path, this.secret);
    this.upgradeStatus = opened.status;
    this.upgradeBody = opened.body;
    this.ws = opened.ws;
    if (!opened.ws) return opened.status;
    const ws = opened.ws;
    ws.addEventListener("close", (event) => {
      this.closeEvents.push({ code: event.code, reason: event.reason });
      if (this.ws === ws) this.ws = null;
    });
    listen(ws, this.log, (frame) => this.answer(ws, frame));
    return opened.status;
  }

  private async answer(ws: WebSocket, frame: Frame): Promise<void> {
    const agentAddress = this.agentAddress;
    switch (frame.type) {
      case "agent.deploy": {
        this.config = frame.config;
        if (this.answers.deploy === "silent") return;
        if (this.answers.deploy === "error") {
          sendOn(ws, { type: "agent.error", agentAddress, error: "the test sidecar refuses to deploy" });
          return;
        }
        this.keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
        const raw = new Uint8Array((await crypto.subtle.exportKey("raw", this.keys.publicKey)) as ArrayBuffer);
        this.publicKeyHex = toHex(raw);
        sendOn(ws, { type: "agent.deploy.ack", agentAddress, publicKey: this.publicKeyHex });
        return;
      }
      case "session.start":
        sendOn(ws, { type: "session.start.ack", agentAddress });
        return;
      case "challenge": {
        if (!this.keys) return;
        const message = new Uint8Array([...fromHex(frame.nonce), ...new TextEncoder().encode(agentAddress)]);
        const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, this.keys.privateKey, message));
        sendOn(ws, {
          type: "challenge.response",
          agentAddress,
          signature: toHex(signature),
          deployRef: this.deployRef,
        });
        return;
      }
      case "repo.pack.done":
        if (frame.ref === "refs/heads/deploy") this.deployRef = frame.commitSha;
        return;
      case "session.abort":
        if (this.answers.abort === "ack") sendOn(ws, { type: "session.ack", requestId: frame.requestId });
        if (this.answers.abort === "error") {
          sendOn(ws, { type: "session.error", requestId: frame.requestId, error: "nothing to abort" });
        }
        return;
      case "agent.undeploy":
        sendOn(ws, { type: "agent.undeploy.ack", agentAddress, statePushed: false });
        return;
      default:
        return;
    }
  }

  send(frame: Frame): void {
    sendOn(this.ws, frame);
  }

  /** An `agent.event` with the sidecar's own sequence number. */
  event(type: string, data: Record<string, unknown> = {}): void {
    this.send({
      type: "agent.event",
      agentAddress: this.agentAddress,
      sessionId: this.sessionId,
      event: { type, seq: ++this.seq, data },
    });
  }

  /** `mail.outbound` with a MIME message given as text (sent base64, as the protocol says). */
  outbound(mime: string, recipients: string[]): void {
    this.send({ type: "mail.outbound", agentAddress: this.agentAddress, rawMessage: toBase64(mime), recipients });
  }

  connectorState(connectorState: Record<string, unknown> | null): void {
    this.send({ type: "connector.state.changed", agentAddress: this.agentAddress, connectorState });
  }

  /**
   * Waits until the hub has handled everything sent before: it handles a channel's frames one at a time,
   * in order, so its `pong` comes after the frames before the `ping`.
   */
  async settled(): Promise<void> {
    const from = this.log.frames.length;
    this.send({ type: "ping" });
    await this.log.next("pong", from);
  }

  /** Drops the channel, as a network failure or a sidecar restart would. */
  drop(code = 1001, reason = "test drop"): void {
    const ws = this.ws;
    this.ws = null;
    ws?.close(code, reason);
  }

  /** Reopens after a drop and proves the instance key; resolves after the hub's `grants.update`. */
  async reconnect(): Promise<void> {
    const from = this.log.frames.length;
    const status = await this.open();
    if (status !== 101) throw new Error(`Reconnect refused: ${status} ${JSON.stringify(this.upgradeBody)}`);
    await this.log.next("challenge", from);
    await this.log.next("grants.update", from);
  }
}

/** A sidecar: its control channel and the instance channels the hub assigned to it. */
export class TestSidecar {
  readonly control = new FrameLog();
  readonly instances = new Map<string, TestInstanceChannel>();
  private ws: WebSocket | null = null;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private opened = new FrameLog();

  private constructor(
    readonly secret: string,
    readonly answers: Answers,
  ) {}

  /** Connects the control channel and answers `hello` with `ready` (listing `running`). */
  static async connect(secret: string, answers: Partial<Answers> = {}, running: string[] = []): Promise<TestSidecar> {
    const sidecar = new TestSidecar(secret, { deploy: "ack", abort: "ack", ...answers });
    const opened = await upgrade("/api/sidecars/connect", secret);
    if (!opened.ws) throw new Error(`Control channel refused: ${opened.status} ${JSON.stringify(opened.body)}`);
    sidecar.ws = opened.ws;
    listen(opened.ws, sidecar.control, (frame) => sidecar.answer(frame, running));
    await sidecar.control.next("hello");
    // The hub marks the sidecar alive on every ping, as the real sidecar's keepalive does.
    sidecar.pinger = setInterval(() => sidecar.ping(), PING_INTERVAL_MS);
    return sidecar;
  }

  private async answer(frame: Frame, running: string[]): Promise<void> {
    if (frame.type === "hello") {
      sendOn(this.ws, { type: "ready", instances: running });
      return;
    }
    if (frame.type === "instance.assign") {
      // Assigned again (e.g. the `ready` listing raced a launch): the open channel stays, as in sidecar/sidecar.ts.
      if (this.instances.has(frame.instanceId)) return;
      const channel = new TestInstanceChannel(
        frame.instanceId,
        frame.agentAddress,
        frame.path,
        this.secret,
        this.answers,
      );
      this.instances.set(frame.instanceId, channel);
      await channel.open();
      this.opened.push({ type: "opened", instanceId: frame.instanceId });
    }
  }

  ping(): void {
    try {
      sendOn(this.ws, { type: "ping" });
    } catch {
      // closed
    }
  }

  /** The channel of an instance the hub assigned to this sidecar, once it is open. */
  async instance(instanceId: string): Promise<TestInstanceChannel> {
    await this.opened.waitFor((f) => f.instanceId === instanceId, `the channel of ${instanceId}`);
    return this.instances.get(instanceId) as TestInstanceChannel;
  }

  /** Closes every channel (the hub sees the sidecar go offline). */
  close(): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
    for (const channel of this.instances.values()) channel.drop(1000, "test sidecar closed");
    this.ws?.close(1000, "test sidecar closed");
    this.ws = null;
  }
}
