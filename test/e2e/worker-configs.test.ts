/**
 * The hub is two Workers (docs/deployment.md): the API in wrangler.toml and the instance objects in
 * wrangler.instances.toml. The end-to-end tests run both; these checks keep the two configs pointing at
 * each other and at the same storage, which a deploy would otherwise reveal only in production.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { bundleWorker } from "../../scripts/hub.mjs";

/** The parts of a wrangler config these checks read. */
type WorkerConfig = {
  name: string;
  compatibility_date?: string;
  compatibility_flags: string[];
  workers_dev?: boolean;
  routes?: unknown[];
  durable_objects: { bindings: { name: string; class_name: string; script_name?: string }[] };
  migrations: { new_sqlite_classes?: string[] }[];
  d1_databases: { binding: string; database_id?: string }[];
  r2_buckets: { binding: string; bucket_name?: string }[];
};

const root = join(import.meta.dirname, "..", "..");
const read = (file: string) => unstable_readConfig({ config: join(root, file) }) as unknown as WorkerConfig;
const hub = read("wrangler.toml");
const instances = read("wrangler.instances.toml");
const binding = (config: WorkerConfig, name: string) => config.durable_objects.bindings.find((b) => b.name === name);

describe("the hub's two Worker configs", () => {
  it("the hub reaches InstanceObject in the instances Worker, which declares the class and its migration", () => {
    expect(binding(hub, "INSTANCE")).toMatchObject({ class_name: "InstanceObject", script_name: instances.name });
    expect(binding(instances, "INSTANCE")).toMatchObject({ class_name: "InstanceObject" });
    expect(binding(instances, "INSTANCE")?.script_name).toBeUndefined();
    expect(instances.migrations.flatMap((m) => m.new_sqlite_classes ?? [])).toContain("InstanceObject");
  });

  it("the instances Worker reaches SidecarObject in the hub", () => {
    expect(binding(instances, "SIDECAR")).toMatchObject({ class_name: "SidecarObject", script_name: hub.name });
    expect(binding(hub, "SIDECAR")?.script_name).toBeUndefined();
  });

  it("both use the same database, bucket and runtime settings", () => {
    const storage = (c: WorkerConfig) => ({
      d1: c.d1_databases.map((d) => [d.binding, d.database_id]),
      r2: c.r2_buckets.map((b) => [b.binding, b.bucket_name]),
      compatibility: [c.compatibility_date, c.compatibility_flags],
    });
    expect(storage(instances)).toEqual(storage(hub));
  });

  it("the instances Worker has no public route", () => {
    expect(instances.workers_dev).toBe(false);
    expect(instances.routes ?? []).toEqual([]);
  });
});

describe("the instances Worker's bundle", () => {
  // Everything it loads lives in its isolate's heap, and how long a full garbage collection stops the
  // objects grows with that heap (docs/events.md): the API's OpenAPI, auth and routes stay out. zod is in:
  // the objects check every sidecar frame against its schema (src/runtime/frame-schemas.ts).
  it("holds the instance objects' code, not the API's libraries or routes", async () => {
    const outdir = await mkdtemp(join(tmpdir(), "agent-hub-bundle-"));
    try {
      const meta = JSON.parse(await readFile(await bundleWorker("wrangler.instances.toml", outdir), "utf8")) as {
        inputs: Record<string, unknown>;
      };
      const modules = Object.keys(meta.inputs);
      expect(modules).toContain("durable-objects/instance.ts");
      const apiOnly = /node_modules\/(@hono\/zod-openapi|@asteasolutions|better-auth|@scalar)\/|^src\/(routes|auth)\//;
      expect(modules.filter((m) => apiOnly.test(m))).toEqual([]);
    } finally {
      await rm(outdir, { recursive: true, force: true });
    }
  }, 60_000);
});
