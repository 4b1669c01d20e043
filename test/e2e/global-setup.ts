/**
 * Starts the real hub once for all end-to-end tests: fresh local state in a temporary directory,
 * migrations applied by `wrangler d1 migrations apply`, then `wrangler dev` on a free loopback port.
 */
import { writeFile } from "node:fs/promises";
import type { TestProject } from "vitest/node";
import { startFreshHub } from "../../scripts/hub.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    hubUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const hub = await startFreshHub({ prefix: "agent-hub-e2e-" });
  project.provide("hubUrl", hub.url);
  return async () => {
    // The server's own log, for when a test fails on a 500: set E2E_HUB_LOG=<file> to keep it.
    if (process.env.E2E_HUB_LOG) await writeFile(process.env.E2E_HUB_LOG, hub.output());
    await hub.stop();
  };
}
