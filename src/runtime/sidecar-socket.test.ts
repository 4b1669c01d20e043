import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { InstanceSetup } from "./instance-state";
import { Outbox } from "./outbox";
import type { InstanceHubFrame } from "./protocol";
import { SidecarSocket } from "./sidecar-socket";

const setup = {
  tenantId: "tnt_1",
  instanceId: "ins_1",
  sidecarId: "sdc_1",
  hubPublicKey: "ab",
  config: { agentId: "agt_1", agentAddress: "ins_1@t.example" },
} as unknown as InstanceSetup;

const mail = (mailId: string): InstanceHubFrame => ({
  type: "mail.inbound",
  agentAddress: "ins_1@t.example",
  mailId,
  rawMessage: "",
});

/** The frames a client end receives. */
function received(client: WebSocket): { type: string; [key: string]: unknown }[] {
  const frames: { type: string }[] = [];
  client.accept();
  client.addEventListener("message", (e) => {
    frames.push(JSON.parse(String(e.data)));
  });
  return frames;
}

const tick = () => new Promise((r) => setTimeout(r, 20));

async function inObject(fn: (socket: SidecarSocket, state: DurableObjectState) => Promise<void>) {
  const stub = env.INSTANCE.get(env.INSTANCE.newUniqueId());
  await runInDurableObject(stub, (_instance, state) =>
    fn(new SidecarSocket(state, new Outbox(state.storage.sql)), state),
  );
}

describe("SidecarSocket", () => {
  it("keeps what matters after a reconnect while no sidecar is there, and drops the rest", async () => {
    await inObject(async (socket) => {
      expect(socket.trusted()).toBeNull();
      expect(socket.deliver(mail("m1"))).toBe("queued");
      expect(socket.deliver({ type: "session.start", agentAddress: "ins_1@t.example" })).toBe("dropped");
    });
  });

  it("deploys to a first-time sidecar and trusts it at once", async () => {
    await inObject(async (socket) => {
      const client = socket.open(setup, false);
      const frames = received(client);
      await tick();
      expect(frames).toMatchObject([{ type: "agent.deploy", agentId: "agt_1", hubPublicKey: "ab" }]);
      expect(socket.trusted()).not.toBeNull();
      expect(socket.deliver(mail("m1"))).toBe("sent");
      await tick();
      expect(frames.map((f) => f.type)).toEqual(["agent.deploy", "mail.inbound"]);
    });
  });

  it("challenges a returning sidecar, keeps frames until it is trusted, then flushes them in order", async () => {
    await inObject(async (socket, state) => {
      const client = socket.open(setup, true);
      const frames = received(client);
      await tick();
      expect(frames).toMatchObject([{ type: "challenge", agentAddress: "ins_1@t.example" }]);
      const server = socket.trusted();
      expect(server).toBeNull();
      expect(socket.deliver(mail("m1"))).toBe("queued");
      expect(socket.deliver(mail("m2"))).toBe("queued");

      const [ws] = state.getWebSockets("sidecar");
      if (!ws) throw new Error("no server socket");
      expect(socket.pendingNonce(ws)).toBe(frames[0]?.nonce);
      socket.trust(ws);
      expect(socket.pendingNonce(ws)).toBeNull();
      expect(socket.flushOutbox(ws)).toEqual(["m1", "m2"]);
      await tick();
      expect(frames.map((f) => [f.type, f.mailId])).toEqual([
        ["challenge", undefined],
        ["mail.inbound", "m1"],
        ["mail.inbound", "m2"],
      ]);
    });
  });

  it("a new connection replaces the old one", async () => {
    await inObject(async (socket) => {
      const first = socket.open(setup, false);
      let closed: number | null = null;
      first.accept();
      first.addEventListener("close", (e) => {
        closed = e.code;
      });
      socket.open(setup, true);
      await tick();
      expect(closed).toBe(4000);
      // The replacement has not proved itself yet.
      expect(socket.trusted()).toBeNull();
    });
  });
});
