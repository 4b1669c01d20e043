/**
 * Starts the real hub once for all end-to-end tests: fresh local state in a temporary directory,
 * migrations applied by `wrangler d1 migrations apply`, then `wrangler dev` on a free loopback port.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { applyMigrations, freePort, noRateLimits, startHub } from "../../scripts/hub.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    hubUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const persistTo = await mkdtemp(join(tmpdir(), "agent-hub-e2e-"));
  await applyMigrations({ persistTo, quiet: true });
  const hub = await startHub({ port: await freePort(), persistTo, quiet: true, vars: noRateLimits });
  project.provide("hubUrl", hub.url);
  return async () => {
    // The server's own log, for when a test fails on a 500: set E2E_HUB_LOG=<file> to keep it.
    if (process.env.E2E_HUB_LOG) await writeFile(process.env.E2E_HUB_LOG, hub.output());
    await hub.stop();
    await rm(persistTo, { recursive: true, force: true });
  };
}
