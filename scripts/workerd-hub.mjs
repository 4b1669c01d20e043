// Runs the hub's bundle in workerd through Miniflare, without `wrangler dev`'s development proxy and
// inspector: the runtime a benchmark should measure, on one machine, when its clients share the CPU.
// Run as a child process by startHubInWorkerd (scripts/hub.mjs): argv = bundle dir, persist dir, port.
// Prints `ready <url>` once the hub answers.

import { join } from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { root } from "./hub.mjs";

const [bundleDir, persistTo, port] = process.argv.slice(2);

// Bindings, compatibility settings and Durable Object classes as wrangler.toml declares them. Module rules
// only matter when Miniflare collects modules itself; the bundle is a single module.
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml"));
const options = Object.fromEntries(
  Object.entries(workerOptions).filter(([key, value]) => key !== "modulesRules" && value !== undefined),
);

const mf = new Miniflare({
  ...convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: Number(port),
    log: new Log(LogLevel.INFO),
    workers: [{ ...options, scriptPath: join(bundleDir, "index.js"), modules: true, modulesRoot: bundleDir }],
  }),
  // The layout `wrangler --persist-to` uses, so `wrangler d1 migrations apply --persist-to` prepared it.
  resourcePersistencePath: join(persistTo, "v3"),
});
const url = await mf.ready;
process.stdout.write(`ready ${url.href.replace(/\/$/, "")}\n`);
const stop = () => mf.dispose().finally(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
