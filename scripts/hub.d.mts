import type { ChildProcess } from "node:child_process";

export const root: string;
export const offlineEnv: Record<string, string>;
export const noRateLimits: Record<string, string>;
export function freePort(): Promise<number>;
export const workerConfigs: string[];
export function bundleWorker(config: string, outdir: string): Promise<string>;
export function applyMigrations(opts?: { persistTo?: string; quiet?: boolean }): Promise<void>;
export function waitForStatus(baseUrl: string, opts?: { timeoutMs?: number; child?: ChildProcess }): Promise<void>;
export function startHub(opts?: {
  port?: number;
  persistTo?: string;
  vars?: Record<string, string>;
  quiet?: boolean;
  testScheduled?: boolean;
  detached?: boolean;
}): Promise<{
  url: string;
  /** The Worker isolate's inspector (Chrome DevTools protocol over WebSocket). */
  inspectorPort: number;
  child: ChildProcess;
  stop: () => Promise<void>;
  kill: () => Promise<void>;
  output: () => string;
}>;
export function startFreshHub(opts?: {
  port?: number;
  vars?: Record<string, string>;
  prefix?: string;
}): Promise<Awaited<ReturnType<typeof startHub>> & { persistTo: string }>;
export function startHubInWorkerd(opts: {
  port: number;
  persistTo: string;
  vars?: Record<string, string>;
  /** Opens workerd's inspector on this port (an isolate's heap, CPU profiles). */
  inspectorPort?: number;
}): Promise<{
  url: string;
  child: ChildProcess;
  stop: () => Promise<void>;
  output: () => string;
  inspectorPort: number | undefined;
}>;
export function startSidecar(opts: { hubUrl: string; secret: string; stateDir: string; quiet?: boolean }): {
  child: ChildProcess;
  stop: () => Promise<void>;
  output: () => string;
};
