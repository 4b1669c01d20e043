/**
 * The reference sidecar's command line: `SIDECAR_SECRET=ahs_… npm run sidecar`.
 *
 *   HUB_URL            the hub (default http://127.0.0.1:8787)
 *   SIDECAR_SECRET     the secret returned when the sidecar was registered (required)
 *   SIDECAR_STATE_DIR  where instance keys, configs and state repositories are kept (default .sidecar-state/)
 */
import { resolve } from "node:path";
import { Sidecar } from "./sidecar";

function log(line: string): void {
  console.log(`${new Date().toISOString()} sidecar: ${line}`);
}

const secret = process.env.SIDECAR_SECRET;
if (!secret) {
  console.error("sidecar: SIDECAR_SECRET is required (the secret returned by POST /api/tenants/:t/sidecars)");
  process.exit(2);
}
const hubUrl = process.env.HUB_URL || "http://127.0.0.1:8787";
if (!URL.canParse(hubUrl) || !/^https?:$/.test(new URL(hubUrl).protocol)) {
  console.error(`sidecar: HUB_URL must be an http(s) URL, got ${JSON.stringify(hubUrl)}`);
  process.exit(2);
}
const stateDir = resolve(process.env.SIDECAR_STATE_DIR || ".sidecar-state/");

const sidecar = new Sidecar({
  hubUrl,
  secret,
  stateDir,
  log,
  onFatal: (error) => {
    console.error(`sidecar: ${error.message}`);
    process.exit(1);
  },
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}, stopping`);
  await sidecar.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

log(`connecting to ${hubUrl} (state in ${stateDir})`);
await sidecar.start();
