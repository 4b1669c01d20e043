// `npm start`: apply migrations to the local D1, run the hub on http://127.0.0.1:8787, seed the demo
// user and tenant (if absent) and print how to use them.
import { applyMigrations, startHub } from "./hub.mjs";
import { seedDemo } from "./seed.mjs";

const port = Number(process.env.PORT ?? 8787);
const started = Date.now();
await applyMigrations();
const hub = await startHub({ port });
console.log(`\nAgent Hub is up on ${hub.url} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
console.log(`  API reference: ${hub.url}/docs`);
console.log(`  OpenAPI:       ${hub.url}/openapi.json`);
const seeded = await seedDemo(hub.url);
console.log(`\nDemo user ${seeded.userCreated ? "created" : "ready"}: ${seeded.email} / ${seeded.password}`);
console.log(`  Tenant "${seeded.tenantSlug}": ${seeded.tenantId}`);
console.log(`  Session token (valid 7 days): ${seeded.token}`);
console.log(`  Try: curl -H "Authorization: Bearer ${seeded.token}" ${hub.url}/api/me/principals\n`);

const shutdown = async () => {
  await hub.stop();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
hub.child.on("exit", (code) => process.exit(code ?? 1));
