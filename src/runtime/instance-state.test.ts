import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type InstanceSetup, InstanceState } from "./instance-state";

async function withStorage<T>(fn: (storage: DurableObjectStorage) => Promise<T>): Promise<T> {
  const stub = env.INSTANCE.get(env.INSTANCE.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state.storage));
}

const setup = {
  tenantId: "tnt_1",
  instanceId: "ins_1",
  sidecarId: "sdc_1",
  hubPublicKey: "00",
  config: { instanceId: "ins_1", sessionId: "ses_1", agentAddress: "ins_1@t.example" },
} as unknown as InstanceSetup;

describe("InstanceState", () => {
  it("is new and not live before a launch", async () => {
    await withStorage(async (storage) => {
      const state = new InstanceState(storage);
      expect(await state.phase()).toBe("new");
      expect(await state.setup()).toBeUndefined();
      expect(await state.liveSetup()).toBeNull();
      expect(await state.collector()).toBeNull();
      expect(await state.connectorState()).toBeNull();
      expect(await state.publicKey()).toBeUndefined();
    });
  });

  it("keeps what a launch wrote across a restart of the object (a new InstanceState on the same storage)", async () => {
    await withStorage(async (storage) => {
      await new InstanceState(storage).begin(setup);
      const again = new InstanceState(storage);
      expect(await again.setup()).toEqual(setup);
      expect(await again.phase()).toBe("deploying");
      expect(await again.liveSetup()).toEqual(setup);
      expect((await again.collector())?.status).toBe("idle");
      await again.setPublicKey("ab".repeat(32));
      await again.setConnectorState({ threadRoot: "<a@b>", lastMessageId: "<a@b>", replyTo: "x@y", cc: [] });
      const third = new InstanceState(storage);
      expect(await third.publicKey()).toBe("ab".repeat(32));
      expect((await third.connectorState())?.threadRoot).toBe("<a@b>");
    });
  });

  it("is no longer live once stopped", async () => {
    await withStorage(async (storage) => {
      const state = new InstanceState(storage);
      await state.begin(setup);
      await state.setPhase("stopped");
      expect(await state.liveSetup()).toBeNull();
      expect(await new InstanceState(storage).liveSetup()).toBeNull();
    });
  });

  it("saves a collector that moved only when asked, or when marked dirty and the tick comes", async () => {
    await withStorage(async (storage) => {
      const state = new InstanceState(storage);
      await state.begin(setup);
      const collector = await state.collector();
      const before = JSON.stringify(collector?.serializeState());
      state.newCollector({ ...setup, config: { ...setup.config, sessionId: "ses_2" } });
      // Not saved yet: another object on the same storage still sees the launch's collector.
      expect(JSON.stringify((await new InstanceState(storage).collector())?.serializeState())).toBe(before);
      state.markCollectorDirty();
      state.saveCollectorIfDirty();
      await new Promise((r) => setTimeout(r, 10));
      expect(JSON.stringify((await new InstanceState(storage).collector())?.serializeState())).not.toBe(before);
    });
  });
});
