/**
 * The hub's side of docs/sidecar-protocol.md, just enough to drive a sidecar in tests: bearer check on the
 * upgrade, `hello`, `instance.assign`, first deploy (`agent.deploy` → `session.start`), reconnect with an
 * Ed25519 challenge it really verifies, then `grants.update`, `sources.update` and the frames queued while
 * the sidecar was away. Packs: it sends an instance's deploy packs between `agent.deploy.ack` and
 * `session.start` (and after a reconnect whose `deployRef` differs), and answers state pushes like the hub
 * (ack, or `non_fast_forward` when `expectedOldSha` is not its tip). Everything received is logged per
 * channel for the test to inspect.
 */
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { readControlFrame, readInstanceFrame } from "../../src/runtime/frame-schemas";
import { type FrameError, type HarnessConfig, PACK_CHUNK_BYTES, type RepoId } from "../../src/runtime/protocol";

export type Frame = { type: string; [key: string]: unknown };

type HubInstance = {
  instanceId: string;
  agentAddress: string;
  config: HarnessConfig;
  /** Hex Ed25519 key from `agent.deploy.ack`; once set, every new connection is challenged. */
  publicKey: string | null;
  ws: WebSocket | null;
  nonce: string | null;
  verified: boolean;
  /** Frames for the instance while its sidecar is away, delivered after a good challenge. */
  queued: Frame[];
  /** Status answered to the next upgrade instead of accepting it (403/404/410). */
  refuseWith: number | null;
  /** Sent after `agent.deploy.ack` (before `session.start`), and after a reconnect with another `deployRef`. */
  deployPacks: OutgoingPack[];
  /** The deploy commit (the `refs/heads/deploy` pack among `deployPacks`). */
  deployCommit: string | null;
  /** The state branch's tip as acknowledged. */
  stateTip: string | null;
  /** What the hub does with a state push: apply it (`ack`, checking `expectedOldSha`), refuse it, or say nothing. */
  statePushes: "ack" | "reject" | "silent";
  /** Every state push received, put back together. */
  pushes: StatePush[];
};

export type ChallengeResult = { instanceId: string; nonce: string; verified: boolean; deployRef: unknown };

/** A pack the hub sends: the deploy tree, an asset, or a restored state commit. */
export type OutgoingPack = {
  pack: Buffer;
  repoId: RepoId;
  ref: string;
  commitSha: string;
  mountPath?: string;
  transferId?: string;
};

export type StatePush = { done: Frame; pack: Buffer; answer: Frame | null };

let transfers = 0;

/** `repo.pack.push` ×N then `repo.pack.done`, as the hub sends a pack. */
export function packFrames(agentAddress: string, outgoing: OutgoingPack): Frame[] {
  transfers += 1;
  const transferId = outgoing.transferId ?? `xfer_${transfers}`;
  const frames: Frame[] = [];
  for (let offset = 0; offset < outgoing.pack.length; offset += PACK_CHUNK_BYTES) {
    const data = outgoing.pack.subarray(offset, offset + PACK_CHUNK_BYTES).toString("base64");
    frames.push({ type: "repo.pack.push", agentAddress, transferId, seq: frames.length, data });
  }
  frames.push({
    type: "repo.pack.done",
    agentAddress,
    transferId,
    repoId: outgoing.repoId,
    ref: outgoing.ref,
    commitSha: outgoing.commitSha,
    chunks: frames.length,
    ...(outgoing.mountPath ? { mountPath: outgoing.mountPath } : {}),
  });
  return frames;
}

export function agentConfig(instanceId: string, overrides: Partial<HarnessConfig> = {}): HarnessConfig {
  return {
    instanceId,
    sessionId: `ses_${instanceId}`,
    agentId: "agt_test",
    tenantId: "tnt_test",
    principalId: `prn_${instanceId}`,
    agentAddress: `${instanceId}@acme.agent-hub.local`,
    systemPrompt: "You are a test agent.",
    tools: [],
    apiToken: `ahi_test_${instanceId}`,
    grants: [],
    sources: [{ id: "echo:echo", provider: "echo", baseURL: "", apiKey: "", model: "echo" }],
    defaultSource: "echo:echo",
    ...overrides,
  };
}

export class FakeHub {
  /** Sent in `agent.deploy`: the key the deploy commits must be signed with. */
  hubPublicKey = "00".repeat(32);
  readonly url: string;
  /** Every frame received, keyed by `control` or the instance id, in arrival order. */
  readonly received = new Map<string, Frame[]>();
  readonly challenges: ChallengeResult[] = [];
  /** Upgrade attempts per channel key (to see reconnects). */
  readonly connects = new Map<string, number>();
  readonly instances = new Map<string, HubInstance>();
  /** When false, pings go unanswered (to test the sidecar's dead-channel detection). */
  answerPings = true;
  control: WebSocket | null = null;
  /** REST requests the sidecar made (the `hub_api` tool), with the bearer token and body it sent. */
  readonly apiRequests: { method: string; path: string; authorization: string | null; body: string }[] = [];
  /** Answers a REST request; unset, every request is a 404. */
  api: ((request: { method: string; path: string; body: string }) => { status: number; body: unknown }) | null = null;
  /** Frames the real hub would have answered with `frame.error` (none, or `close` throws). */
  readonly refused: { key: string; error: FrameError }[] = [];
  private readonly waiters = new Set<() => void>();
  private requestCounter = 0;

  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
    readonly secret: string,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    server.on("upgrade", (req, socket, head) => this.upgrade(req, socket, head));
  }

  static async start(secret = "ahs_test_secret"): Promise<FakeHub> {
    let hub: FakeHub | null = null;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        const request = { method: req.method ?? "GET", path: req.url ?? "/", body };
        hub?.apiRequests.push({ ...request, authorization: req.headers.authorization ?? null });
        const answer = hub?.api?.(request) ?? { status: 404, body: { error: { code: "not_found" } } };
        res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    hub = new FakeHub(server, new WebSocketServer({ noServer: true }), secret);
    return hub;
  }

  /** Closes the hub; throws when the sidecar sent a frame the real hub would have refused (`frame.error`). */
  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.refused.length > 0) {
      throw new Error(`The sidecar sent frames the hub refuses: ${JSON.stringify(this.refused.slice(0, 3))}`);
    }
  }

  /** Registers an instance (as the hub would on launch) and assigns it over the control channel. */
  assign(instanceId: string, config: HarnessConfig = agentConfig(instanceId)): void {
    if (!this.instances.has(instanceId)) {
      this.instances.set(instanceId, {
        instanceId,
        agentAddress: config.agentAddress,
        config,
        publicKey: null,
        ws: null,
        nonce: null,
        verified: false,
        queued: [],
        refuseWith: null,
        deployPacks: [],
        deployCommit: null,
        stateTip: null,
        statePushes: "ack",
        pushes: [],
      });
    }
    this.sendControl({
      type: "instance.assign",
      instanceId,
      agentAddress: config.agentAddress,
      path: this.path(instanceId),
    });
  }

  instance(instanceId: string): HubInstance {
    const instance = this.instances.get(instanceId);
    if (!instance) throw new Error(`unknown instance ${instanceId}`);
    return instance;
  }

  sendControl(frame: Frame): void {
    this.control?.send(JSON.stringify(frame));
  }

  /** Sends to the instance now if its sidecar is connected and verified, else queues it (like the DO). */
  sendInstance(instanceId: string, frame: Frame): void {
    const instance = this.instance(instanceId);
    if (instance.ws && instance.verified) instance.ws.send(JSON.stringify(frame));
    else instance.queued.push(frame);
  }

  nextRequestId(): string {
    this.requestCounter += 1;
    return `req_${this.requestCounter}`;
  }

  /** Cuts the instance channel the way a network failure would. */
  dropInstance(instanceId: string): void {
    const instance = this.instance(instanceId);
    instance.ws?.terminate();
    instance.ws = null;
    instance.verified = false;
  }

  frames(key: string): Frame[] {
    return this.received.get(key) ?? [];
  }

  /** Resolves with the first frame on `key` (already received or coming) that matches. */
  waitFor(key: string, match: (frame: Frame) => boolean, timeoutMs = 4_000): Promise<Frame> {
    return this.until(() => this.frames(key).find(match), timeoutMs, `a matching frame on ${key}`);
  }

  /**
   * Resolves once `check` returns something other than undefined/false. Checked on every hub event and
   * every 10 ms (for conditions on the sidecar's side).
   */
  until<T>(check: () => T | undefined | false, timeoutMs = 4_000, what = "a condition"): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(attempt);
      };
      const attempt = () => {
        const value = check();
        if (value === undefined || value === false) return false;
        finish();
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(attempt, 10);
      if (!attempt()) this.waiters.add(attempt);
    });
  }

  private path(instanceId: string): string {
    return `/api/sidecars/instances/${instanceId}/connect`;
  }

  private record(key: string, frame: Frame): void {
    // Checked as the hub checks it (src/runtime/frame-schemas.ts): the reference sidecar must send valid frames.
    const text = JSON.stringify(frame);
    const checked = key === "control" ? readControlFrame(text) : readInstanceFrame(text);
    if (!checked.ok) this.refused.push({ key, error: checked.error });
    const list = this.received.get(key) ?? [];
    list.push(frame);
    this.received.set(key, list);
    for (const waiter of [...this.waiters]) waiter();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number): undefined => {
      socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    const path = new URL(req.url ?? "/", this.url).pathname;
    const key =
      path === "/api/sidecars/connect" ? "control" : /^\/api\/sidecars\/instances\/([^/]+)\/connect$/.exec(path)?.[1];
    if (!key) {
      refuse(404);
      return;
    }
    this.connects.set(key, (this.connects.get(key) ?? 0) + 1);
    for (const waiter of [...this.waiters]) waiter();
    const instance = this.instances.get(key);
    const status =
      req.headers.authorization !== `Bearer ${this.secret}`
        ? 401
        : key === "control"
          ? null
          : !instance
            ? 404
            : instance.refuseWith;
    if (status) {
      refuse(status);
      return;
    }
    if (!instance) {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onControl(ws));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onInstance(instance, ws));
  }

  private parse(data: unknown): Frame | null {
    try {
      const frame = JSON.parse(String(data)) as Frame;
      return typeof frame?.type === "string" ? frame : null;
    } catch {
      return null;
    }
  }

  private onControl(ws: WebSocket): void {
    this.control?.terminate(); // a second control channel replaces the first
    this.control = ws;
    ws.on("message", (data) => {
      const frame = this.parse(data);
      if (!frame) return;
      this.record("control", frame);
      if (frame.type === "ping" && this.answerPings) ws.send(JSON.stringify({ type: "pong" }));
    });
    ws.send(JSON.stringify({ type: "hello", sidecarId: "sdc_test", tenantId: "tnt_test" }));
  }

  private onInstance(instance: HubInstance, ws: WebSocket): void {
    instance.ws?.terminate();
    instance.ws = ws;
    instance.verified = false;
    const send = (frame: Frame) => ws.send(JSON.stringify(frame));
    ws.on("message", (data) => {
      const frame = this.parse(data);
      if (!frame) return;
      this.record(instance.instanceId, frame);
      if (frame.type === "ping") {
        if (this.answerPings) send({ type: "pong" });
      } else if (frame.type === "agent.deploy.ack") {
        instance.publicKey = String(frame.publicKey);
        for (const pack of instance.deployPacks) for (const f of packFrames(instance.agentAddress, pack)) send(f);
        send({ type: "session.start", agentAddress: instance.agentAddress });
      } else if (frame.type === "repo.pack.done") {
        this.onStatePush(instance, frame, send);
      } else if (frame.type === "session.start.ack") {
        instance.verified = true;
        this.flush(instance);
      } else if (frame.type === "challenge.response") {
        this.onChallengeResponse(instance, ws, frame);
      }
    });
    ws.on("close", () => {
      if (instance.ws === ws) {
        instance.ws = null;
        instance.verified = false;
      }
    });
    if (instance.publicKey) {
      instance.nonce = randomBytes(32).toString("hex");
      send({ type: "challenge", agentAddress: instance.agentAddress, nonce: instance.nonce });
    } else {
      send({
        type: "agent.deploy",
        agentAddress: instance.agentAddress,
        agentId: instance.config.agentId,
        config: instance.config,
        hubPublicKey: this.hubPublicKey,
      });
    }
  }

  private onChallengeResponse(instance: HubInstance, ws: WebSocket, frame: Frame): void {
    const nonce = instance.nonce ?? "";
    const verified =
      instance.nonce !== null &&
      instance.publicKey !== null &&
      frame.agentAddress === instance.agentAddress &&
      verifySignature(instance.publicKey, instance.nonce, instance.agentAddress, String(frame.signature));
    instance.nonce = null;
    this.challenges.push({ instanceId: instance.instanceId, nonce, verified, deployRef: frame.deployRef });
    for (const waiter of [...this.waiters]) waiter();
    if (!verified) {
      ws.send(
        JSON.stringify({ type: "challenge.failed", agentAddress: instance.agentAddress, reason: "bad signature" }),
      );
      ws.close(4003, "challenge failed");
      return;
    }
    instance.verified = true;
    const { config } = instance;
    const grants = { type: "grants.update", requestId: this.nextRequestId(), agentAddress: instance.agentAddress };
    ws.send(JSON.stringify({ ...grants, grants: config.grants }));
    ws.send(
      JSON.stringify({
        type: "sources.update",
        requestId: this.nextRequestId(),
        agentAddress: instance.agentAddress,
        sources: config.sources,
        defaultSource: config.defaultSource,
      }),
    );
    if (instance.deployPacks.length > 0 && frame.deployRef !== instance.deployCommit) {
      for (const pack of instance.deployPacks) {
        for (const f of packFrames(instance.agentAddress, pack)) ws.send(JSON.stringify(f));
      }
    }
    this.flush(instance);
  }

  /** A state push is complete: put its chunks together and answer it like the hub. */
  private onStatePush(instance: HubInstance, done: Frame, send: (frame: Frame) => void): void {
    const chunks = this.frames(instance.instanceId).filter(
      (f) => f.type === "repo.pack.push" && f.transferId === done.transferId,
    );
    const pack = Buffer.concat(chunks.map((f) => Buffer.from(String(f.data), "base64")));
    const reply = { agentAddress: instance.agentAddress, transferId: done.transferId };
    let answer: Frame | null = null;
    if (instance.statePushes === "reject") {
      answer = { type: "repo.pack.reject", ...reply, reason: "corrupt", message: "refused", currentSha: null };
    } else if (instance.statePushes === "ack" && done.expectedOldSha !== instance.stateTip) {
      const message = "expectedOldSha is not the tip";
      answer = {
        type: "repo.pack.reject",
        ...reply,
        reason: "non_fast_forward",
        message,
        currentSha: instance.stateTip,
      };
    } else if (instance.statePushes === "ack") {
      instance.stateTip = String(done.commitSha);
      answer = { type: "repo.pack.ack", ...reply, ref: done.ref, commitSha: done.commitSha };
    }
    instance.pushes.push({ done, pack, answer });
    if (answer) send(answer);
  }

  private flush(instance: HubInstance): void {
    for (const frame of instance.queued.splice(0)) instance.ws?.send(JSON.stringify(frame));
  }
}

/** What the real hub does with the key from `agent.deploy.ack`: Ed25519 over bytes(nonce) ‖ utf8(address). */
export function verifySignature(
  publicKeyHex: string,
  nonceHex: string,
  agentAddress: string,
  signatureHex: string,
): boolean {
  try {
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKeyHex, "hex").toString("base64url") },
      format: "jwk",
    });
    const message = Buffer.concat([Buffer.from(nonceHex, "hex"), Buffer.from(agentAddress, "utf8")]);
    return verify(null, message, key, Buffer.from(signatureHex, "hex"));
  } catch {
    return false;
  }
}

/** A user's mail as the hub sends it: multipart/signed text with a (dummy) detached signature, base64. */
export function userMail(input: {
  from: string;
  to: string;
  text: string;
  messageId: string;
  subject?: string;
  inReplyTo?: string;
  references?: string[];
}): string {
  const boundary = `----=_Part_${randomBytes(18).toString("hex")}`;
  const lines = [
    `From: ${input.from}`,
    `To: ${input.to}`,
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: ${input.messageId}`,
    ...(input.inReplyTo ? [`In-Reply-To: ${input.inReplyTo}`] : []),
    ...(input.references?.length ? [`References: ${input.references.join(" ")}`] : []),
    ...(input.subject ? [`Subject: ${input.subject}`] : []),
    "MIME-Version: 1.0",
    `Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha512; boundary="${boundary}"`,
    "Interchange-Type: conversation.message",
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 7bit",
    "",
    input.text,
    `--${boundary}`,
    'Content-Type: application/pgp-signature; name="signature.asc"',
    "",
    "-----BEGIN PGP SIGNATURE-----",
    "",
    "iHUEABYKAB0WIQTdummydummydummydummydummydummydummy",
    "-----END PGP SIGNATURE-----",
    `--${boundary}--`,
    "",
  ];
  return Buffer.from(lines.join("\r\n"), "utf8").toString("base64");
}
