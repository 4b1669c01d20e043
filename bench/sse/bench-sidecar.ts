/**
 * A minimal sidecar for the SSE benchmark (docs/sidecar-protocol.md): it deploys and starts every instance
 * it is assigned, answers pings and undeploys, and on command emits `custom.bench` events stamped with the
 * time they were sent. No inference, no state on disk.
 *
 * Run by bench/sse/fanout.ts as a child process (its own event loop, like a sidecar on another host):
 * HUB_URL and SIDECAR_SECRET in the environment, commands over the IPC channel (`Command` below).
 */
import { generateKeyPairSync } from "node:crypto";
import { performance } from "node:perf_hooks";
import { type RawData, WebSocket } from "ws";
import type { ControlHubFrame, InstanceHubFrame, InstanceSidecarFrame } from "../../src/runtime/protocol";

/** The clock every timestamp of the benchmark uses: wall-clock milliseconds with sub-ms resolution. */
export const now = () => performance.timeOrigin + performance.now();

export type EmitOptions = {
  instanceId: string;
  count: number;
  /** Events per second, sent in small batches every `tickMs`; 0 sends all of them in one synchronous loop. */
  ratePerSec: number;
  /** Carried in `data.phase`, so that the receivers can tell two runs on one instance apart. */
  phase: string;
  tickMs?: number;
};

export type CommandBody = { cmd: "emit"; options: EmitOptions } | { cmd: "clock" } | { cmd: "stop" };
export type Command = CommandBody & { id: number };

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** Unsolicited messages to the parent. */
export type Notice =
  | { notice: "connected" }
  | { notice: "running"; instanceId: string }
  | { notice: "error"; message: string };

type Instance = { ws: WebSocket; agentAddress: string; sessionId: string | null; running: boolean };

const PING_INTERVAL_MS = 15_000;

export class BenchSidecar {
  private control: WebSocket | null = null;
  private readonly instances = new Map<string, Instance>();
  private pinger: NodeJS.Timeout | undefined;

  constructor(
    private readonly hubUrl: string,
    private readonly secret: string,
    private readonly notify: (notice: Notice) => void,
  ) {}

  private wsUrl(path: string): string {
    return `${this.hubUrl.replace(/^http/, "ws")}${path}`;
  }

  private open(path: string): WebSocket {
    return new WebSocket(this.wsUrl(path), { headers: { authorization: `Bearer ${this.secret}` } });
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = this.open("/api/sidecars/connect");
      this.control = ws;
      ws.on("unexpected-response", (_req, res) => reject(new Error(`control channel refused: ${res.statusCode}`)));
      ws.on("error", (err) => reject(err));
      ws.on("message", (raw: RawData) => {
        const frame = JSON.parse(raw.toString()) as ControlHubFrame;
        if (frame.type === "hello") {
          ws.send(JSON.stringify({ type: "ready", instances: [] }));
          resolve();
          this.notify({ notice: "connected" });
        } else if (frame.type === "instance.assign") {
          this.serve(frame.instanceId, frame.agentAddress, frame.path);
        } else if (frame.type === "instance.revoke") {
          this.instances.get(frame.instanceId)?.ws.close(1000);
          this.instances.delete(frame.instanceId);
        }
      });
      ws.on("close", (code) => {
        if (this.control !== ws) return;
        // wrangler dev restarts the hub when a source file changes: come back, as a real sidecar would.
        this.notify({ notice: "error", message: `control channel closed (${code}); reconnecting` });
        setTimeout(() => {
          if (this.control === ws) this.connect().catch(() => {});
        }, 1_000);
      });
    });
  }

  /** Pings keep both channels alive past the hub's 45 s silence limit. */
  startPings(): void {
    this.pinger = setInterval(() => {
      const ping = JSON.stringify({ type: "ping" });
      if (this.control?.readyState === WebSocket.OPEN) this.control.send(ping);
      for (const i of this.instances.values()) if (i.ws.readyState === WebSocket.OPEN) i.ws.send(ping);
    }, PING_INTERVAL_MS);
  }

  private serve(instanceId: string, agentAddress: string, path: string): void {
    const ws = this.open(path);
    const instance: Instance = { ws, agentAddress, sessionId: null, running: false };
    this.instances.set(instanceId, instance);
    const send = (frame: InstanceSidecarFrame) => ws.send(JSON.stringify(frame));
    ws.on("unexpected-response", (_req, res) =>
      this.notify({ notice: "error", message: `instance channel ${instanceId} refused: ${res.statusCode}` }),
    );
    ws.on("error", (err) =>
      this.notify({ notice: "error", message: `instance channel ${instanceId}: ${err.message}` }),
    );
    ws.on("message", (raw: RawData) => {
      const frame = JSON.parse(raw.toString()) as InstanceHubFrame;
      switch (frame.type) {
        case "agent.deploy": {
          instance.sessionId = frame.config.sessionId;
          const { publicKey } = generateKeyPairSync("ed25519");
          // The raw key is the last 32 bytes of the SPKI DER encoding.
          const raw32 = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
          send({ type: "agent.deploy.ack", agentAddress, publicKey: raw32.toString("hex") });
          break;
        }
        case "session.start":
          send({ type: "session.start.ack", agentAddress });
          instance.running = true;
          this.notify({ notice: "running", instanceId });
          break;
        case "agent.undeploy":
          send({ type: "agent.undeploy.ack", agentAddress, statePushed: false });
          break;
        case "challenge":
          // Never happens here: the benchmark never reconnects an instance channel.
          this.notify({ notice: "error", message: `unexpected challenge for ${instanceId}` });
          break;
        default:
          break;
      }
    });
    ws.on("close", () => this.instances.delete(instanceId));
  }

  /** Sends `count` events, paced at `ratePerSec` (or all at once); resolves when all were handed to the socket. */
  async emit(options: EmitOptions): Promise<{ sent: number; firstSentAt: number; lastSentAt: number }> {
    const instance = this.instances.get(options.instanceId);
    if (!instance?.running || !instance.sessionId) throw new Error(`instance ${options.instanceId} is not running`);
    const { ws, agentAddress, sessionId } = instance;
    let sent = 0;
    let firstSentAt = 0;
    const sendOne = () => {
      const sentAt = now();
      if (sent === 0) firstSentAt = sentAt;
      const frame: InstanceSidecarFrame = {
        type: "agent.event",
        agentAddress,
        sessionId,
        event: { type: "custom.bench", seq: sent, data: { i: sent, sentAt, phase: options.phase } },
      };
      ws.send(JSON.stringify(frame));
      sent += 1;
    };
    if (options.ratePerSec <= 0) {
      while (sent < options.count) sendOne();
    } else {
      const tickMs = options.tickMs ?? 10;
      const start = now();
      await new Promise<void>((resolve) => {
        const tick = () => {
          const due = Math.min(options.count, Math.floor(((now() - start) / 1000) * options.ratePerSec) + 1);
          while (sent < due) sendOne();
          if (sent >= options.count) resolve();
          else setTimeout(tick, tickMs);
        };
        tick();
      });
    }
    return { sent, firstSentAt, lastSentAt: now() };
  }

  close(): void {
    clearInterval(this.pinger);
    for (const i of this.instances.values()) i.ws.terminate();
    this.instances.clear();
    this.control?.terminate();
    this.control = null;
  }
}

/** Child-process entry: one sidecar, driven over IPC. */
async function runChild(): Promise<void> {
  const hubUrl = process.env.HUB_URL;
  const secret = process.env.SIDECAR_SECRET;
  const send = (message: Reply | Notice) => process.send?.(message);
  if (!hubUrl || !secret || !process.send) throw new Error("bench-sidecar: HUB_URL, SIDECAR_SECRET and IPC needed");
  const sidecar = new BenchSidecar(hubUrl, secret, send);
  // The parent going away (even by SIGKILL) closes the IPC channel: never outlive it.
  process.on("disconnect", () => {
    sidecar.close();
    process.exit(0);
  });
  process.on("message", async (command: Command) => {
    try {
      if (command.cmd === "emit") send({ id: command.id, ok: true, result: await sidecar.emit(command.options) });
      else if (command.cmd === "clock") send({ id: command.id, ok: true, result: now() });
      else if (command.cmd === "stop") {
        sidecar.close();
        send({ id: command.id, ok: true, result: null });
        process.disconnect();
      }
    } catch (err) {
      send({ id: command.id, ok: false, error: (err as Error).message });
    }
  });
  await sidecar.connect();
  sidecar.startPings();
}

if (process.send && process.env.BENCH_SIDECAR_CHILD === "1") {
  runChild().catch((err: Error) => {
    process.send?.({ notice: "error", message: err.message } satisfies Notice);
    process.exit(1);
  });
}
