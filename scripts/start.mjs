// `npm start`: build the console, apply migrations to the local D1, run the hub on http://127.0.0.1:8787, seed the demo
// user, tenant, echo agent and sidecar (if absent), run the reference sidecar, and print how to use them.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildAssets } from "./build-assets.mjs";
import { applyMigrations, root, startHub, startSidecar } from "./hub.mjs";
import { seedDemo, seedDemoRuntime } from "./seed.mjs";

const port = Number(process.env.PORT ?? 8787);
const started = Date.now();
await Promise.all([applyMigrations(), buildAssets({ quiet: true })]);
// The console signs in from the hub's own origin; both spellings of loopback are let in. A .dev.vars of
// your own (docs/deployment.md) takes over.
const vars = existsSync(join(root, ".dev.vars"))
  ? {}
  : { AUTH_BASE_URL: `http://127.0.0.1:${port}`, AUTH_TRUSTED_ORIGINS: `http://localhost:${port}` };
const hub = await startHub({ port, vars });
console.log(`\nAgent Hub is up on ${hub.url} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
console.log(`  Console:       ${hub.url}/console/`);
console.log(`  API reference: ${hub.url}/docs`);
console.log(`  OpenAPI:       ${hub.url}/openapi.json`);
const seeded = await seedDemo(hub.url);
const runtime = await seedDemoRuntime(hub.url, seeded, join(root, ".wrangler", "state", "demo-sidecar.json"));
const sidecar = startSidecar({
  hubUrl: hub.url,
  secret: runtime.sidecarSecret,
  stateDir: join(root, ".wrangler", "state", "sidecar"),
});
const t = `${hub.url}/api/tenants/${seeded.tenantId}`;
console.log(`\nDemo user ${seeded.userCreated ? "created" : "ready"}: ${seeded.email} / ${seeded.password}`);
console.log(`  Tenant "${seeded.tenantSlug}": ${seeded.tenantId}`);
console.log(`  Reference sidecar ${runtime.sidecarId} is running beside the hub.`);
console.log(`\nTry it (the token is valid 7 days):
  export TOKEN=${seeded.token}
  # launch the Echo agent
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"agentId":"${runtime.agentId}"}' ${t}/agents/instances
  # watch it (use the instance id from above), in another terminal
  curl -N -H "Authorization: Bearer $TOKEN" ${t}/agents/instances/INSTANCE_ID/events
  # talk to it
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"content":"hello agent"}' ${t}/agents/instances/INSTANCE_ID/mail
`);

const shutdown = async () => {
  await sidecar.stop();
  await hub.stop();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
hub.child.on("exit", (code) => process.exit(code ?? 1));
