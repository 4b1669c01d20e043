/**
 * Starts the real hub once for all end-to-end tests: fresh local state in a temporary directory,
 * migrations applied by `wrangler d1 migrations apply`, then `wrangler dev` on a free loopback port.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { applyMigrations, freePort, startHub } from "../../scripts/hub.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    hubUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const persistTo = await mkdtemp(join(tmpdir(), "agent-hub-e2e-"));
  await applyMigrations({ persistTo, quiet: true });
  const hub = await startHub({ port: await freePort(), persistTo, quiet: true });
  project.provide("hubUrl", hub.url);
  return async () => {
    await hub.stop();
    await rm(persistTo, { recursive: true, force: true });
  };
}
