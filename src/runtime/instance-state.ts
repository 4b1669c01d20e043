/**
 * What one instance's Durable Object keeps in its storage: the launch setup, the lifecycle phase, the
 * sidecar's public key for the instance, the mail connector's thread state and the event collector.
 * The setup is written once and then read by every frame, so it is also kept in memory; the collector is
 * kept in memory between events and saved when it moved.
 */
import type { ShippedPack } from "../agent-state/deploy-tree";
import type { ModelPricing } from "../catalog/pricing";
import { EventCollector } from "./collector";
import type { ConnectorState, HarnessConfig, InferenceSource } from "./protocol";
import { type TraceContext, takeTraceContext } from "./trace-context";

/** Everything a launch hands the instance object. */
export type InstanceSetup = {
  config: HarnessConfig;
  tenantId: string;
  instanceId: string;
  sidecarId: string | null;
  hubPublicKey: string;
  /** The wallet model calls are charged to. */
  walletId: string;
  /** Each source's price per million tokens, from the catalog at launch (null: unpriced). */
  pricing: Record<string, ModelPricing | null>;
  /** The definition's deploy commit this instance was launched with. */
  deployCommit: string;
  /** The deploy tree and the attached assets, shipped after the deploy and again to a stale sidecar. */
  packs: ShippedPack[];
};

/** The lifecycle as the instance object sees it. */
export type Phase = "new" | "deploying" | "running" | "stopped";

export class InstanceState {
  private setupKept: InstanceSetup | undefined;
  private collectorKept: EventCollector | null = null;
  /** The collector moved without a save (a text delta); the next tick saves it. */
  private collectorDirty = false;

  constructor(private readonly storage: DurableObjectStorage) {}

  async setup(): Promise<InstanceSetup | undefined> {
    this.setupKept ??= await this.storage.get<InstanceSetup>("setup");
    return this.setupKept;
  }

  /** The setup of an instance that was launched here and has not stopped, else null. */
  async liveSetup(): Promise<InstanceSetup | null> {
    const setup = await this.setup();
    return setup && (await this.phase()) !== "stopped" ? setup : null;
  }

  async phase(): Promise<Phase> {
    return (await this.storage.get<Phase>("phase")) ?? "new";
  }

  async setPhase(phase: Phase): Promise<void> {
    await this.storage.put("phase", phase);
  }

  /** A launch: the setup, the `deploying` phase and a fresh collector for its session. */
  async begin(setup: InstanceSetup): Promise<void> {
    this.setupKept = setup;
    await this.storage.put("setup", setup);
    await this.setPhase("deploying");
    this.newCollector(setup);
    await this.saveCollector();
  }

  /** The instance's public key (hex Ed25519), known once the sidecar acknowledged the deploy. */
  async publicKey(): Promise<string | undefined> {
    return this.storage.get<string>("publicKey");
  }

  async setPublicKey(publicKey: string): Promise<void> {
    await this.storage.put("publicKey", publicKey);
  }

  /** The sources the sidecar was last given (at launch, then by `sources.update`). */
  async sources(): Promise<InferenceSource[]> {
    return (await this.storage.get<InferenceSource[]>("sources")) ?? (await this.setup())?.config.sources ?? [];
  }

  /** Keeps the sources sent, and remembers their credentials among those the instance depends on. */
  async setSources(sources: InferenceSource[]): Promise<void> {
    const credentials = await this.credentialIds();
    for (const source of sources) if (source.credentialId) credentials.add(source.credentialId);
    await this.storage.put({ sources, credentialIds: [...credentials] });
  }

  /**
   * Every credential the instance's sources have come from since launch: a change to any of them may change
   * its sources (one revoked and then restored comes back).
   */
  async credentialIds(): Promise<Set<string>> {
    const kept = await this.storage.get<string[]>("credentialIds");
    if (kept) return new Set(kept);
    return new Set((await this.sources()).flatMap((s) => (s.credentialId ? [s.credentialId] : [])));
  }

  async connectorState(): Promise<ConnectorState> {
    return (await this.storage.get<ConnectorState>("connectorState")) ?? null;
  }

  async setConnectorState(state: ConnectorState): Promise<void> {
    await this.storage.put("connectorState", state);
  }

  /** The trace context the last user mail came with, for the turn that starts next (then forgotten). */
  takeTraceContext(): Promise<TraceContext | null> {
    return takeTraceContext(this.storage);
  }

  /** The collector of the current session, or null before the first launch. */
  async collector(): Promise<EventCollector | null> {
    if (this.collectorKept) return this.collectorKept;
    const saved = await this.storage.get<ReturnType<EventCollector["serializeState"]>>("collector");
    this.collectorKept = saved ? EventCollector.restoreState(saved) : null;
    return this.collectorKept;
  }

  /** A collector for a new session (launch, or the first event after a session ended). */
  newCollector(setup: InstanceSetup): EventCollector {
    this.collectorKept = EventCollector.create({
      instanceId: setup.instanceId,
      sessionId: setup.config.sessionId,
      tenantId: setup.tenantId,
    });
    return this.collectorKept;
  }

  async saveCollector(): Promise<void> {
    this.collectorDirty = false;
    if (this.collectorKept) await this.storage.put("collector", this.collectorKept.serializeState());
  }

  markCollectorDirty(): void {
    this.collectorDirty = true;
  }

  /** Saves a collector that moved since its last save; a failed write is retried by the next one. */
  saveCollectorIfDirty(): void {
    if (this.collectorDirty) this.saveCollector().catch(() => {});
  }
}
