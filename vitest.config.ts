import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Four projects:
// - `workers`: unit and HTTP tests inside workerd, with real local D1, R2 and Durable Objects;
// - `e2e`: Node tests that start the real server (`wrangler dev`) and drive it with real clients;
// - `structure`: checks on the source itself (which layer may import which);
// - `sidecar`: the reference sidecar's tests, in Node.
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              main: "./src/index.ts",
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                // Rate limits off (0) for the pool: tests sign up from one address; test/workers/rate-limits.test.ts
                // passes its own limits in the env of `createApp().request`.
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  RATE_LIMIT_TENANT_PER_MINUTE: "0",
                  RATE_LIMIT_PRINCIPAL_PER_MINUTE: "0",
                  RATE_LIMIT_AUTH_PER_MINUTE: "0",
                  RATE_LIMIT_SIGN_IN_FAILURES: "0",
                  // Relays from the third subscriber of an instance on (docs/events.md, "Relays"): the
                  // tests of live events then cover the relay tier too.
                  SSE_SUBSCRIBERS_PER_OBJECT: "2",
                },
                // One Worker here: the hub's own exports serve INSTANCE and EVENT_RELAY, which deployments
                // bind to the instances Worker (wrangler.instances.toml); the objects' code is the same.
                durableObjects: {
                  INSTANCE: { className: "InstanceObject", useSQLite: true },
                  EVENT_RELAY: { className: "EventRelayObject", useSQLite: true },
                  SIDECAR: { className: "SidecarObject", useSQLite: true },
                  RATE_LIMITER: { className: "RateLimiterObject", useSQLite: true },
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["src/**/*.test.ts", "durable-objects/**/*.test.ts", "test/workers/**/*.test.ts"],
            setupFiles: ["./test/workers/apply-migrations.ts"],
          },
        },
        {
          test: {
            name: "e2e",
            environment: "node",
            include: ["test/e2e/**/*.test.ts"],
            globalSetup: ["./test/e2e/global-setup.ts"],
            testTimeout: 60_000,
            hookTimeout: 60_000,
          },
        },
        {
          test: {
            name: "structure",
            environment: "node",
            include: ["test/structure/**/*.test.ts"],
          },
        },
        {
          test: {
            name: "sidecar",
            environment: "node",
            include: ["sidecar/**/*.test.ts"],
          },
        },
      ],
    },
  };
});
