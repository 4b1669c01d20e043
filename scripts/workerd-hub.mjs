// Runs the hub's bundle in workerd through Miniflare, without `wrangler dev`'s development proxy and
// inspector: the runtime a benchmark should measure, on one machine, when its clients share the CPU.
// Run as a child process by startHubInWorkerd (scripts/hub.mjs): argv = bundles dir (one bundle per Worker
// config, in bundles/<config>/), persist dir, port, the Worker variables to set in both Workers (JSON) and,
// optionally, an inspector port (for a benchmark that reads an isolate's heap). Prints `ready <url>` once
// the hub answers.

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { noRateLimits, root, workerConfigs } from "./hub.mjs";

const [bundlesDir, persistTo, port, varsJson = "{}", inspectorPort] = process.argv.slice(2);
const vars = JSON.parse(varsJson);

/**
 * A Worker as its wrangler config declares it (bindings, compatibility settings, Durable Object classes,
 * including those bound from the other Worker by script_name), running its bundle. Module rules only matter
 * when Miniflare collects modules itself; a bundle is a single module.
 */
async function worker(configFile) {
  const config = unstable_readConfig({ config: join(root, configFile) });
  const { workerOptions } = unstable_getMiniflareWorkerOptions(config);
  const options = Object.fromEntries(
    Object.entries(workerOptions).filter(([key, value]) => key !== "modulesRules" && value !== undefined),
  );
  const dir = join(bundlesDir, configFile);
  const main = (await readdir(dir)).find((f) => f.endsWith(".js"));
  // A benchmark sends more than a client may: the hub's rate limits are off.
  if (configFile === "wrangler.toml") options.bindings = { ...options.bindings, ...noRateLimits };
  options.bindings = { ...options.bindings, ...vars };
  // Named as deployed, which is what the other Worker's script_name refers to.
  return { ...options, name: config.name, scriptPath: join(dir, main), modules: true, modulesRoot: dir };
}

const mf = new Miniflare({
  ...convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: Number(port),
    log: new Log(LogLevel.INFO),
    // The first Worker serves the requests.
    workers: await Promise.all(workerConfigs.map(worker)),
  }),
  // The layout `wrangler --persist-to` uses, so `wrangler d1 migrations apply --persist-to` prepared it.
  resourcePersistencePath: join(persistTo, "v3"),
  ...(inspectorPort ? { inspectorPort: Number(inspectorPort) } : {}),
});
const url = await mf.ready;
process.stdout.write(`ready ${url.href.replace(/\/$/, "")}\n`);
const stop = () => mf.dispose().finally(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
