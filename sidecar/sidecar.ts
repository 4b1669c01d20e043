/**
 * The sidecar process: one control channel to the hub (which instances to serve) and one instance channel
 * per instance (docs/sidecar-protocol.md). Channels reconnect by themselves with backoff; each instance's
 * key and configuration live in `<stateDir>/<instanceId>.json`, so that a restarted sidecar can prove it is
 * the same one (the reconnect challenge) and keep serving. Its state is a git repository under
 * `<stateDir>/<instanceId>/` (state-repo.ts), exchanged with the hub as packs (packs.ts, §3.2).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import fs from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import git from "isomorphic-git";
import { type RawData, WebSocket } from "ws";
import { parseCommit, serializeCommit } from "../src/git/objects/object";
import { sshVerify } from "../src/git/objects/sshsig";
import { hexToBytes } from "../src/lib/hex";
import { challengeMessage } from "../src/runtime/challenge";
import type {
  ControlHubFrame,
  ControlSidecarFrame,
  HarnessConfig,
  InstanceHubFrame,
  InstanceSidecarFrame,
  LogLevel,
} from "../src/runtime/protocol";
import { HEARTBEAT_INTERVAL_MS, SIDECAR_TIMEOUT_MS } from "../src/runtime/protocol";
import { Harness, logFrame } from "./harness";
import type { ModelOptions } from "./models";
import {
  buildPack,
  checkoutTree,
  indexPack,
  isFailure,
  MAX_PACK_BYTES,
  mountDirectory,
  type PackFailure,
  PackReceiver,
  splitPack,
} from "./packs";
import { MAIN_REF, StateRepo } from "./state-repo";

export type SidecarOptions = {
  hubUrl: string;
  secret: string;
  stateDir: string;
  log?: (line: string) => void;
  /** Called when going on cannot help (the hub refuses the secret). The sidecar has stopped by then. */
  onFatal?: (error: Error) => void;
  pingIntervalMs?: number;
  /** A channel that heard nothing for this long is dropped and reconnected. */
  deadAfterMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  models?: ModelOptions;
  /** How long the hub has to answer a `gate.request` before the tool call is refused (default 15 s). */
  gateAnswerTimeoutMs?: number;
  /** How long the hub has to answer a state push before it counts as failed (default 20 s). */
  statePushTimeoutMs?: number;
};

/** What `<stateDir>/<instanceId>.json` holds. */
type StoredInstance = {
  version: 1;
  instanceId: string;
  agentAddress: string;
  path: string;
  hubPublicKey: string;
  /** Hex Ed25519 public key, as sent in `agent.deploy.ack`. */
  publicKey: string;
  /** PKCS#8 PEM. */
  privateKey: string;
  config: HarnessConfig;
  started: boolean;
  /** The deploy commit (`refs/heads/deploy`) the sidecar holds: `deployRef` in `challenge.response`. */
  deployRef?: string | null;
  /** The branch tip the hub last acknowledged: `expectedOldSha` of the next state push. */
  expectedOldSha?: string | null;
};

type Frame = { type: string; [key: string]: unknown };

type ChannelHandlers = {
  onOpen(): void;
  onFrame(frame: Frame): void;
  /** The socket closed (not by `stop`): reconnect, unless this returns "stop". */
  onClose(code: number): "retry" | "stop";
  /** The upgrade was answered with a status other than 101: keep trying, or give up. */
  onRefused(status: number): "retry" | "stop";
};

type ChannelTiming = { pingIntervalMs: number; deadAfterMs: number; backoff: { initialMs: number; maxMs: number } };

/** One WebSocket that keeps itself alive: pings, drops itself when silent, reconnects with backoff. */
class Channel {
  private ws: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly timing: ChannelTiming,
    private readonly handlers: ChannelHandlers,
    private readonly log: (line: string) => void,
  ) {}

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.url, {
      headers: { authorization: `Bearer ${this.secret}` },
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    ws.on("open", () => {
      this.attempt = 0;
      this.heard();
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), this.timing.pingIntervalMs);
      this.handlers.onOpen();
    });
    ws.on("message", (data: RawData, isBinary: boolean) => {
      this.heard();
      if (isBinary) return;
      let frame: unknown;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return this.log(`ignored an unparseable frame from ${this.url}`);
      }
      if (typeof frame !== "object" || frame === null || typeof (frame as Frame).type !== "string") {
        return this.log(`ignored a frame without a type from ${this.url}`);
      }
      if ((frame as Frame).type === "pong") return;
      this.handlers.onFrame(frame as Frame);
    });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      if (this.handlers.onRefused(res.statusCode ?? 0) === "stop") this.stopped = true;
      ws.terminate();
    });
    ws.on("error", (error) => {
      if (!/closed before the connection was established/.test(error.message))
        this.log(`${this.url}: ${error.message}`);
    });
    ws.on("close", (code) => {
      clearInterval(this.pingTimer);
      clearTimeout(this.deadline);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.handlers.onClose(code) === "stop") this.stopped = true;
      this.scheduleReconnect();
    });
  }

  send(frame: Frame): boolean {
    if (!this.open) return false;
    this.ws?.send(JSON.stringify(frame));
    return true;
  }

  /** Stops for good (no reconnect); resolves once the socket is closed (at most 1 s for the close handshake). */
  stop(code = 1000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1_000);
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (ws.readyState === WebSocket.OPEN) ws.close(code);
    else ws.terminate();
    return closed;
  }

  /** Drops the connection now; it reconnects like after any other loss. */
  drop(): void {
    this.ws?.terminate();
  }

  private heard(): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      this.log(`${this.url}: silent for ${this.timing.deadAfterMs} ms, reconnecting`);
      this.ws?.terminate();
    }, this.timing.deadAfterMs);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const { initialMs, maxMs } = this.timing.backoff;
    const delay = Math.min(maxMs, initialMs * 2 ** this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}

/** Raw 32-byte Ed25519 public key, hex. */
function publicKeyHex(key: KeyObject): string {
  const jwk = key.export({ format: "jwk" });
  return Buffer.from(jwk.x as string, "base64url").toString("hex");
}

/** The reconnect proof: the instance key's Ed25519 signature of the challenge message, hex. */
export function signChallenge(privateKey: KeyObject, nonceHex: string, agentAddress: string): string {
  return sign(null, challengeMessage(nonceHex, agentAddress), privateKey).toString("hex");
}

type Instance = {
  instanceId: string;
  agentAddress: string;
  path: string;
  channel: Channel | null;
  harness: Harness | null;
  stored: StoredInstance | null;
  privateKey: KeyObject | null;
  /** Frames are handled one after another, in arrival order. */
  chain: Promise<void>;
  repo: StateRepo | null;
  /** Packs the hub sends, being put back together. */
  packs: PackReceiver;
  /** State pushes waiting for the hub's answer, by transferId. */
  pushAnswers: Map<string, (answer: PushAnswer | null) => void>;
  /** State pushes run one at a time (one transfer per direction). */
  pushing: Promise<unknown>;
  persisting: Promise<void>;
};

type PushAnswer = Extract<InstanceHubFrame, { type: "repo.pack.ack" | "repo.pack.reject" }>;

const INSTANCE_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** Close codes the hub uses: a newer connection took the channel over; the reconnect proof failed. */
const REPLACED = 4000;
const CHALLENGE_FAILED = 4003;
/** A ref the hub may set in the state repository. */
const REF = /^refs\/(?!.*\.\.)[A-Za-z0-9._/-]+$/;
const STATE_PUSH_TIMEOUT_MS = 20_000;

export class Sidecar {
  private readonly options: SidecarOptions;
  private readonly timing: ChannelTiming;
  private readonly instances = new Map<string, Instance>();
  private control: Channel | null = null;
  private running = false;

  constructor(options: SidecarOptions) {
    this.options = options;
    this.timing = {
      pingIntervalMs: options.pingIntervalMs ?? HEARTBEAT_INTERVAL_MS,
      deadAfterMs: options.deadAfterMs ?? SIDECAR_TIMEOUT_MS,
      backoff: options.backoff ?? { initialMs: 1_000, maxMs: 30_000 },
    };
  }

  /** Ids of the instances this sidecar holds (deployed, or restored from the state dir). */
  get instanceIds(): string[] {
    return [...this.instances.keys()];
  }

  /** The harness of an instance, once deployed (for inspection). */
  harness(instanceId: string): Harness | null {
    return this.instances.get(instanceId)?.harness ?? null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    await this.restore();
    const url = this.wsUrl("/api/sidecars/connect");
    this.control = new Channel(
      url,
      this.options.secret,
      this.timing,
      {
        onOpen: () => this.log("control channel open"),
        onFrame: (frame) => this.onControlFrame(frame as ControlHubFrame),
        onClose: (code) => {
          this.log(`control channel closed (${code})`);
          if (code !== REPLACED) return "retry";
          // Another process connected with this secret: two sidecars taking turns would never settle.
          this.fatal(new Error("Another connection with this sidecar's secret replaced this one"));
          return "stop";
        },
        onRefused: (status) => {
          if (status !== 401) {
            this.log(`control channel refused (${status}), retrying`);
            return "retry";
          }
          this.fatal(new Error("The hub refused the sidecar secret (401)"));
          return "stop";
        },
      },
      (line) => this.log(line),
    );
    this.control.connect();
  }

  /** Closes every channel; instance state stays on disk for the next start. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const stopping: Promise<void>[] = [this.control?.stop() ?? Promise.resolve()];
    this.control = null;
    for (const instance of this.instances.values()) {
      // Commits queued by the turn being stopped land before the process lets go of the repository.
      if (instance.harness) stopping.push(instance.harness.stop().then(() => instance.repo?.idle()));
      if (instance.channel) stopping.push(instance.channel.stop());
      instance.channel = null;
      for (const answer of instance.pushAnswers.values()) answer(null);
    }
    await Promise.all(stopping);
    this.instances.clear();
  }

  /** Drops an instance channel as if the network failed (it reconnects by itself). */
  dropInstanceChannel(instanceId: string): void {
    this.instances.get(instanceId)?.channel?.drop();
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private fatal(error: Error): void {
    this.log(error.message);
    void this.stop().then(() => this.options.onFatal?.(error));
  }

  private wsUrl(path: string): string {
    const url = new URL(path, this.options.hubUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  private statePath(instanceId: string): string {
    return join(this.options.stateDir, `${instanceId}.json`);
  }

  /** Instances left by a previous run: they keep their key and config, and wait for `instance.assign`. */
  private async restore(): Promise<void> {
    for (const name of await readdir(this.options.stateDir)) {
      if (!name.endsWith(".json")) continue;
      try {
        const stored = JSON.parse(await readFile(join(this.options.stateDir, name), "utf8")) as StoredInstance;
        if (stored.version !== 1 || !INSTANCE_ID.test(stored.instanceId)) throw new Error("unknown format");
        const instance = this.newInstance(stored.instanceId, stored.agentAddress, stored.path);
        instance.stored = stored;
        instance.privateKey = createPrivateKey(stored.privateKey);
        instance.repo = await this.openRepo(instance);
        instance.harness = this.newHarness(instance, stored.config);
        instance.harness.restoreConversation(await instance.repo.readTurns(), await instance.repo.readMetadata());
        if (stored.started) instance.harness.start();
        this.log(`restored ${stored.instanceId}`);
      } catch (error) {
        this.log(`ignored state file ${name}: ${(error as Error).message}`);
      }
    }
  }

  /** Writes the record; one write at a time per instance (a state push saves while frames are handled). */
  private persist(instance: Instance): Promise<void> {
    const write = async () => {
      if (!instance.stored) return;
      const file = this.statePath(instance.instanceId);
      const tmp = `${file}.tmp`;
      await writeFile(tmp, `${JSON.stringify(instance.stored, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, file);
    };
    const done = instance.persisting.then(write);
    instance.persisting = done.catch(() => {});
    return done;
  }

  private newInstance(instanceId: string, agentAddress: string, path: string): Instance {
    const instance: Instance = {
      instanceId,
      agentAddress,
      path,
      channel: null,
      harness: null,
      stored: null,
      privateKey: null,
      chain: Promise.resolve(),
      repo: null,
      packs: new PackReceiver(),
      pushAnswers: new Map(),
      pushing: Promise.resolve(),
      persisting: Promise.resolve(),
    };
    this.instances.set(instanceId, instance);
    return instance;
  }

  private async openRepo(instance: Instance): Promise<StateRepo> {
    const repo = new StateRepo(
      join(this.options.stateDir, instance.instanceId),
      () => ({ name: "agent", email: instance.agentAddress }),
      (line) => this.log(`[${instance.instanceId}] ${line}`),
    );
    await repo.open();
    return repo;
  }

  private newHarness(instance: Instance, config: HarnessConfig): Harness {
    return new Harness(config, {
      send: (frame) => this.sendInstance(instance, frame),
      log: (line) => this.log(line),
      ...(instance.repo ? { state: instance.repo } : {}),
      hubUrl: this.options.hubUrl,
      ...(this.options.models ? { models: this.options.models } : {}),
      ...(this.options.gateAnswerTimeoutMs === undefined
        ? {}
        : { gateAnswerTimeoutMs: this.options.gateAnswerTimeoutMs }),
    });
  }

  private sendInstance(instance: Instance, frame: InstanceSidecarFrame): void {
    if (!instance.channel?.send(frame)) this.log(`[${instance.instanceId}] channel down, dropped ${frame.type}`);
  }

  /** A line for the operator, in the instance's logs on the hub (`log`, docs/sidecar-protocol.md §3.4). */
  private report(instance: Instance, level: LogLevel, message: string, metadata?: Record<string, unknown>): void {
    this.sendInstance(instance, logFrame(instance.agentAddress, level, message, metadata));
  }

  private sendControl(frame: ControlSidecarFrame): void {
    this.control?.send(frame);
  }

  private onControlFrame(frame: ControlHubFrame): void {
    switch (frame.type) {
      case "hello":
        this.log(`hello from the hub: sidecar ${frame.sidecarId}, tenant ${frame.tenantId}`);
        this.sendControl({ type: "ready", instances: this.instanceIds });
        return;
      case "instance.assign":
        this.assign(frame);
        return;
      case "instance.revoke":
        this.log(`[${frame.instanceId}] revoked: ${frame.reason}`);
        void this.forget(frame.instanceId);
        return;
      case "frame.error":
        this.log(
          `the hub refused a ${frame.frameType ?? "malformed"} frame (${frame.field ?? "frame"}): ${frame.message}`,
        );
        return;
      default:
        this.log(`ignored control frame ${(frame as Frame).type}`);
    }
  }

  private assign(frame: Extract<ControlHubFrame, { type: "instance.assign" }>): void {
    if (typeof frame.instanceId !== "string" || !INSTANCE_ID.test(frame.instanceId) || typeof frame.path !== "string") {
      this.log("ignored a malformed instance.assign");
      return;
    }
    let instance = this.instances.get(frame.instanceId);
    if (instance?.channel) return; // already connected or reconnecting by itself
    instance ??= this.newInstance(frame.instanceId, frame.agentAddress, frame.path);
    instance.path = frame.path;
    this.log(`[${frame.instanceId}] assigned`);
    this.openChannel(instance);
  }

  private openChannel(instance: Instance): void {
    const { instanceId } = instance;
    instance.channel = new Channel(
      this.wsUrl(instance.path),
      this.options.secret,
      this.timing,
      {
        // After a first deploy the hub speaks first (`agent.deploy`); after a reconnect it sends `challenge`.
        onOpen: () => {
          // A pack cut by the lost channel is sent again from its first chunk.
          instance.packs.reset();
          this.log(`[${instanceId}] instance channel open`);
        },
        onFrame: (frame) => {
          // The answer to a state push is not queued behind the frames being handled: one of them (undeploy)
          // may be waiting for it.
          if (frame.type === "repo.pack.ack" || frame.type === "repo.pack.reject") {
            instance.pushAnswers.get(String(frame.transferId))?.(frame as PushAnswer);
            return;
          }
          instance.chain = instance.chain
            .then(() => this.onInstanceFrame(instance, frame as InstanceHubFrame))
            .catch((error: unknown) => this.log(`[${instanceId}] ${frame.type} failed: ${(error as Error).message}`));
        },
        onClose: (code) => {
          instance.harness?.setOnline(false);
          this.log(`[${instanceId}] instance channel closed (${code})`);
          if (code === CHALLENGE_FAILED) {
            void this.forget(instanceId);
            return "stop";
          }
          if (code === REPLACED) {
            // Someone else holds the channel now; a later instance.assign may hand it back.
            instance.channel = null;
            return "stop";
          }
          return "retry";
        },
        onRefused: (status) => {
          // 403: assigned to another sidecar; 404: unknown; 410: stopped. None of them will change.
          if ([403, 404, 410].includes(status)) {
            this.log(`[${instanceId}] the hub refused the instance channel (${status}), forgetting it`);
            void this.forget(instanceId);
            return "stop";
          }
          this.log(`[${instanceId}] instance channel refused (${status}), retrying`);
          return "retry";
        },
      },
      (line) => this.log(line),
    );
    instance.channel.connect();
  }

  /** Stops serving an instance and deletes its state (key included). */
  private async forget(instanceId: string): Promise<void> {
    const instance = this.instances.get(instanceId);
    this.instances.delete(instanceId);
    void instance?.channel?.stop();
    await instance?.harness?.stop();
    if (instance) {
      // A state push still saving its record must not bring the file back.
      instance.stored = null;
      await instance.persisting;
    }
    await rm(this.statePath(instanceId), { force: true });
    if (instance?.repo) await instance.repo.run(() => instance.repo?.remove() ?? Promise.resolve());
    else await rm(join(this.options.stateDir, instanceId), { recursive: true, force: true });
  }

  private async onInstanceFrame(instance: Instance, frame: InstanceHubFrame): Promise<void> {
    const send = (reply: InstanceSidecarFrame) => this.sendInstance(instance, reply);
    const { agentAddress } = instance;
    switch (frame.type) {
      case "agent.deploy": {
        const config = frame.config;
        if (typeof config !== "object" || config === null || !Array.isArray(config.sources)) {
          return send({ type: "agent.error", agentAddress, error: "agent.deploy without a valid config" });
        }
        const { publicKey, privateKey } = generateKeyPairSync("ed25519");
        await instance.harness?.stop();
        instance.agentAddress = frame.agentAddress ?? config.agentAddress;
        instance.privateKey = privateKey;
        const previous = instance.stored;
        instance.stored = {
          version: 1,
          instanceId: instance.instanceId,
          agentAddress: instance.agentAddress,
          path: instance.path,
          hubPublicKey: frame.hubPublicKey,
          publicKey: publicKeyHex(publicKey),
          privateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
          config,
          started: false,
          // The deploy packs follow; a state repository kept from before still continues the branch the hub has.
          deployRef: null,
          expectedOldSha: previous?.expectedOldSha ?? null,
        };
        try {
          await this.persist(instance); // the key must survive a restart before the hub relies on it
          instance.repo ??= await this.openRepo(instance);
        } catch (error) {
          return send({ type: "agent.error", agentAddress, error: `cannot store state: ${(error as Error).message}` });
        }
        instance.harness = this.newHarness(instance, config);
        const turns = await instance.repo.readTurns();
        instance.harness.restoreConversation(turns, await instance.repo.readMetadata());
        instance.harness.setOnline(true);
        this.log(`[${instance.instanceId}] deployed (agent ${frame.agentId})`);
        const model = instance.harness.source()?.model;
        this.report(
          instance,
          "info",
          `Deployed agent ${frame.agentId} with model ${model ?? "none"}` +
            (turns.length ? `, continuing a conversation of ${turns.length} messages` : ""),
          { agentId: frame.agentId, model: model ?? null, restoredMessages: turns.length },
        );
        return send({
          type: "agent.deploy.ack",
          agentAddress: instance.agentAddress,
          publicKey: instance.stored.publicKey,
        });
      }
      case "session.start": {
        if (!instance.harness || !instance.stored) {
          return send({ type: "agent.error", agentAddress, error: "session.start before agent.deploy" });
        }
        instance.stored.started = true;
        await this.persist(instance);
        instance.harness.start();
        this.log(`[${instance.instanceId}] started`);
        this.report(instance, "info", "Started: taking mail");
        return send({ type: "session.start.ack", agentAddress });
      }
      case "challenge": {
        if (!instance.privateKey || !instance.harness) {
          // Without the key this sidecar cannot be the one the hub deployed to.
          send({ type: "agent.error", agentAddress, error: "no key for this instance on this sidecar" });
          return this.forget(instance.instanceId);
        }
        if (typeof frame.nonce !== "string" || !/^([0-9a-f]{2})+$/i.test(frame.nonce)) {
          return this.log(`[${instance.instanceId}] ignored a challenge without a hex nonce`);
        }
        const signature = signChallenge(instance.privateKey, frame.nonce, agentAddress);
        send({ type: "challenge.response", agentAddress, signature, deployRef: instance.stored?.deployRef ?? null });
        this.log(`[${instance.instanceId}] answered the challenge`);
        instance.harness.setOnline(true);
        return;
      }
      case "challenge.failed":
        this.log(`[${instance.instanceId}] challenge failed: ${frame.reason}; forgetting the instance`);
        return this.forget(instance.instanceId);
      case "mail.inbound":
        if (!instance.harness || typeof frame.rawMessage !== "string") return this.log("ignored mail.inbound");
        instance.harness.deliver(frame.mailId, frame.rawMessage);
        return;
      case "session.abort": {
        if (!instance.harness)
          return send({ type: "session.error", requestId: frame.requestId, error: "not deployed" });
        const aborted = await instance.harness.abort();
        this.log(`[${instance.instanceId}] abort (${frame.reason}): ${aborted ? "turn stopped" : "nothing running"}`);
        return send({ type: "session.ack", requestId: frame.requestId });
      }
      case "grants.update":
      case "sources.update": {
        if (!instance.harness || !instance.stored) {
          return send({ type: "session.error", requestId: frame.requestId, error: "not deployed" });
        }
        if (frame.type === "grants.update") {
          if (!Array.isArray(frame.grants)) {
            return send({ type: "session.error", requestId: frame.requestId, error: "grants must be an array" });
          }
          instance.harness.updateGrants(frame.grants);
        } else {
          if (!Array.isArray(frame.sources)) {
            return send({ type: "session.error", requestId: frame.requestId, error: "sources must be an array" });
          }
          instance.harness.updateSources(frame.sources, frame.defaultSource);
        }
        instance.stored.config = instance.harness.config;
        await this.persist(instance);
        return send({ type: "session.ack", requestId: frame.requestId });
      }
      case "agent.undeploy": {
        await instance.harness?.stop();
        const statePushed = await this.pushState(instance, `undeploy-${Date.now()}`);
        send({ type: "agent.undeploy.ack", agentAddress, statePushed });
        this.log(`[${instance.instanceId}] undeployed (${frame.reason})`);
        return this.forget(instance.instanceId);
      }
      case "gate.decision":
      case "approval.decision":
        return instance.harness?.onDecision(frame);
      case "sync.request":
        // Not awaited: frames behind it (gate decisions) must not wait for the hub's answer to the push.
        void this.pushState(instance, String(frame.transferId));
        return;
      case "repo.pack.push":
        instance.packs.push(frame);
        return;
      case "repo.pack.done":
        return this.applyPack(instance, frame);
      case "frame.error":
        // A bug of this sidecar (or a hub that speaks a newer protocol): the frame was not applied.
        this.log(
          `[${instance.instanceId}] the hub refused a ${frame.frameType ?? "malformed"} frame (${frame.field ?? "frame"}): ${frame.message}`,
        );
        return;
      default:
        this.log(`[${instance.instanceId}] ignored frame ${(frame as Frame).type}`);
    }
  }

  /**
   * Applies a pack the hub sent: the deploy tree (`refs/heads/deploy`), an asset (checked out in the
   * workspace at its mountPath) or a restored state commit (the branch and work tree move there).
   */
  private async applyPack(instance: Instance, frame: Extract<InstanceHubFrame, { type: "repo.pack.done" }>) {
    const { agentAddress } = instance;
    const transferId = String(frame.transferId);
    const pack = instance.packs.done(frame);
    const outcome = await (async (): Promise<PackFailure | null> => {
      if (isFailure(pack)) return pack;
      const { repo, stored } = instance;
      if (!repo || !stored) return { reason: "conflict", message: "the instance is not deployed on this sidecar" };
      const kind = frame.repoId?.kind;
      const asset = kind === "skill" || kind === "repo";
      if (!asset && kind !== "agent-state")
        return { reason: "corrupt", message: `unknown repoId kind ${String(kind)}` };
      if (typeof frame.ref !== "string" || !REF.test(frame.ref)) {
        return { reason: "path_violation", message: `not a ref: ${String(frame.ref)}` };
      }
      const commitSha = String(frame.commitSha);
      const mount = asset ? mountDirectory(repo.workspace, frame.mountPath ?? "") : null;
      if (asset && !mount) return { reason: "path_violation", message: `bad mountPath ${String(frame.mountPath)}` };
      // An asset's own ref (its refs/heads/main, say) must not move the instance's branches.
      const ref = asset ? `refs/assets/${String(frame.repoId.id).replace(/[^A-Za-z0-9_-]/g, "_")}` : frame.ref;
      const restore = !asset && ref === MAIN_REF;
      const failure = await repo.run(async () => {
        const refused = await indexPack(repo.gitdir, pack, commitSha, repo.cache);
        if (refused) return refused;
        // The deploy tree is the hub's word on what the agent is: only a commit its key signed is taken.
        if (ref === DEPLOY_REF && !(await signedByHub(repo.gitdir, commitSha, stored.hubPublicKey, repo.cache))) {
          const reason = "signature_invalid" as const;
          return { reason, message: `the deploy commit ${commitSha} is not signed by the hub's key` };
        }
        if (restore) await repo.resetTo(commitSha);
        else await git.writeRef({ fs, gitdir: repo.gitdir, ref, value: commitSha, force: true });
        if (mount) await checkoutTree(repo.gitdir, commitSha, mount, repo.cache);
        return null;
      });
      if (failure) return failure;
      if (ref === DEPLOY_REF) stored.deployRef = commitSha;
      if (restore) {
        stored.expectedOldSha = commitSha;
        instance.harness?.restoreConversation(await repo.readTurns(), await repo.readMetadata());
      }
      await this.persist(instance);
      this.log(`[${instance.instanceId}] applied ${ref} at ${commitSha}${mount ? ` (${frame.mountPath})` : ""}`);
      return null;
    })().catch((error: unknown): PackFailure => ({ reason: "corrupt", message: (error as Error).message }));
    if (!outcome) return this.sendInstance(instance, { type: "repo.pack.ack", agentAddress, transferId });
    this.log(`[${instance.instanceId}] refused pack ${transferId}: ${outcome.reason} (${outcome.message})`);
    this.sendInstance(instance, { type: "repo.pack.reject", agentAddress, transferId, ...outcome });
  }

  /** Pushes the state branch to the hub; true once the hub acknowledged it. One push at a time. */
  private pushState(instance: Instance, transferId: string): Promise<boolean> {
    const run = instance.pushing.then(() => this.pushStateNow(instance, transferId));
    instance.pushing = run.catch(() => {});
    return run.catch((error: unknown) => {
      this.log(`[${instance.instanceId}] state push ${transferId} failed: ${(error as Error).message}`);
      return false;
    });
  }

  private async pushStateNow(instance: Instance, transferId: string): Promise<boolean> {
    const { repo, stored, agentAddress } = instance;
    if (!repo || !stored) return false;
    // A stale expectedOldSha (the hub moved on without us) is corrected once from the hub's currentSha.
    for (let attempt = 0; attempt < 2; attempt++) {
      // Built in the repository's queue, so that the pack holds every commit queued before the push.
      const { tip, pack } = await repo.run(async () => {
        const tip = await repo.ensureCommit();
        return { tip, pack: await buildPack(repo.gitdir, tip, repo.cache) };
      });
      if (pack.length > MAX_PACK_BYTES) {
        this.log(`[${instance.instanceId}] state pack of ${pack.length} bytes is over the hub's limit`);
        this.report(instance, "error", `State not pushed: its pack of ${pack.length} bytes is over the hub's limit`, {
          transferId,
          bytes: pack.length,
          limit: MAX_PACK_BYTES,
        });
        return false;
      }
      const chunks = splitPack(pack);
      const expectedOldSha = stored.expectedOldSha ?? null;
      const answer = this.pushAnswer(instance, transferId);
      const sent =
        chunks.every((data, seq) =>
          instance.channel?.send({ type: "repo.pack.push", agentAddress, transferId, seq, data }),
        ) &&
        instance.channel?.send({
          type: "repo.pack.done",
          agentAddress,
          transferId,
          ref: MAIN_REF,
          commitSha: tip,
          expectedOldSha,
          chunks: chunks.length,
        });
      if (!sent) instance.pushAnswers.get(transferId)?.(null);
      const reply = await answer;
      if (!reply) {
        this.log(
          `[${instance.instanceId}] state push ${transferId}: ${sent ? "no answer from the hub" : "channel down"}`,
        );
        // The hub logs the pushes it refuses; one it never answered only the sidecar knows about.
        if (sent) this.report(instance, "warn", "State push not acknowledged: no answer from the hub", { transferId });
        return false;
      }
      if (reply.type === "repo.pack.ack") {
        stored.expectedOldSha = tip;
        await this.persist(instance);
        this.log(`[${instance.instanceId}] state pushed at ${tip}`);
        this.report(instance, "info", `State pushed: ${MAIN_REF} at ${tip}`, {
          transferId,
          ref: MAIN_REF,
          commitSha: tip,
          bytes: pack.length,
        });
        return true;
      }
      this.log(`[${instance.instanceId}] state push ${transferId} refused: ${reply.reason} (${reply.message})`);
      if (reply.reason !== "non_fast_forward" || attempt > 0) return false;
      stored.expectedOldSha = reply.currentSha ?? null;
      await this.persist(instance);
    }
    return false;
  }

  /** The hub's answer to the state push `transferId`, or null after the timeout. */
  private pushAnswer(instance: Instance, transferId: string): Promise<PushAnswer | null> {
    return new Promise((resolve) => {
      const finish = (answer: PushAnswer | null) => {
        clearTimeout(timer);
        if (instance.pushAnswers.get(transferId) === finish) instance.pushAnswers.delete(transferId);
        resolve(answer);
      };
      const timer = setTimeout(() => finish(null), this.options.statePushTimeoutMs ?? STATE_PUSH_TIMEOUT_MS);
      instance.pushAnswers.set(transferId, finish);
    });
  }
}

const DEPLOY_REF = "refs/heads/deploy";

/** Whether a commit carries an SSH signature (`gpgsig`) by the hub's Ed25519 key over its other bytes. */
async function signedByHub(gitdir: string, oid: string, hubPublicKey: string, cache: object): Promise<boolean> {
  if (!/^[0-9a-f]{64}$/.test(hubPublicKey)) return false;
  const { object } = await git.readObject({ fs, gitdir, oid, format: "content", cache });
  // Parsed and written again without `gpgsig`: the bytes the signature covers, as git verifies them.
  const commit = parseCommit(object as Uint8Array);
  const signature = commit.extraHeaders.find((h) => h.name === "gpgsig")?.value;
  if (!signature) return false;
  const payload = serializeCommit({ ...commit, extraHeaders: commit.extraHeaders.filter((h) => h.name !== "gpgsig") });
  try {
    return await sshVerify(signature, payload, hexToBytes(hubPublicKey));
  } catch {
    return false;
  }
}
