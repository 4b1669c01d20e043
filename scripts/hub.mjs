// Starts the hub the way users and the end-to-end tests do: `wrangler d1 migrations apply --local`,
// then `wrangler dev` on loopback. Shared by `npm start`, the tests and the benchmarks.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const wranglerBin = join(root, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * The hub's two Workers: the API (`wrangler.toml`, the one that serves requests) and the instances Worker
 * its INSTANCE binding points to (docs/deployment.md).
 */
export const workerConfigs = ["wrangler.toml", "wrangler.instances.toml"];

/** The three settings that keep wrangler and miniflare off the network (see the stack recipe). */
export const offlineEnv = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

/**
 * Worker vars that turn the hub's rate limits off (docs/http-conventions.md): the end-to-end tests and the
 * benchmarks send far more than a client may, all from one address.
 */
export const noRateLimits = {
  RATE_LIMIT_TENANT_PER_MINUTE: "0",
  RATE_LIMIT_PRINCIPAL_PER_MINUTE: "0",
  RATE_LIMIT_AUTH_PER_MINUTE: "0",
  RATE_LIMIT_SIGN_IN_FAILURES: "0",
};

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function wrangler(args, { env = {}, stdio = "pipe", detached = false } = {}) {
  // process.execPath is the Node that runs this script: Node 22 from the `node` devDependency under npm.
  return spawn(process.execPath, [wranglerBin, ...args], {
    cwd: root,
    env: { ...process.env, ...offlineEnv, ...env },
    stdio,
    detached,
  });
}

/** Runs a one-shot wrangler command; rejects with its output when it fails. */
function runWrangler(args, { env = {}, quiet = true } = {}) {
  return new Promise((resolve, reject) => {
    const child = wrangler(args, { env, stdio: quiet ? "pipe" : "inherit" });
    let output = "";
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`wrangler ${args.slice(0, 3).join(" ")} exited ${code}\n${output}`)),
    );
  });
}

/** Stops a child process: SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
function stopper(child) {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
    });
}

export function applyMigrations({ persistTo, quiet = false } = {}) {
  const args = ["d1", "migrations", "apply", "DB", "--local"];
  if (persistTo) args.push("--persist-to", persistTo);
  // CI=true: `d1 migrations apply` has no --yes flag and would prompt in a TTY.
  return runWrangler(args, { env: { CI: "true" }, quiet });
}

export async function waitForStatus(baseUrl, { timeoutMs = 30_000, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`the hub exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${baseUrl}/status`);
      if (res.ok) return;
      lastError = new Error(`/status answered ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the hub did not answer ${baseUrl}/status within ${timeoutMs} ms: ${lastError}`);
}

/**
 * Runs `wrangler dev` and resolves once /status answers. `vars` become Worker variables; `testScheduled`
 * serves `/__scheduled`; `detached` puts wrangler and workerd in a process group of their own, which `kill`
 * ends with SIGKILL. Returns { url, inspectorPort, child, stop, kill, output() }; the inspector serves the
 * Worker's isolate (bench/support/isolate-heap.ts reads its heap there).
 */
export async function startHub({
  port = 8787,
  persistTo,
  vars = {},
  quiet = false,
  testScheduled = false,
  detached = false,
} = {}) {
  const inspectorPort = await freePort();
  const args = ["dev", ...workerConfigs.flatMap((c) => ["-c", c])];
  args.push("--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort));
  if (persistTo) args.push("--persist-to", persistTo);
  // `GET /__scheduled?cron=…` runs the scheduled handler (the cron triggers) on demand.
  if (testScheduled) args.push("--test-scheduled");
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = wrangler(args, { stdio: quiet ? "pipe" : "inherit", detached });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child);
  try {
    await waitForStatus(url, { child });
  } catch (err) {
    await stop();
    throw new Error(`${err.message}\n--- wrangler output ---\n${output}`);
  }
  // A crash, for tests: SIGKILL to wrangler and its workerd processes at once (they share the group of a
  // `detached` start).
  const kill = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      process.kill(detached ? -child.pid : child.pid, "SIGKILL");
    });
  return { url, inspectorPort, child, stop, kill, output: () => output };
}

/**
 * A hub on fresh local state, for the tests and the benchmarks: a new temporary directory, the migrations
 * applied, `wrangler dev` on `port` (a free one when not given) with the rate limits off and `vars`.
 * `stop()` deletes the state too. Returns what `startHub` does, and `persistTo`.
 */
export async function startFreshHub({ port, vars = {}, prefix = "agent-hub-" } = {}) {
  const persistTo = await mkdtemp(join(tmpdir(), prefix));
  const removeState = () => rm(persistTo, { recursive: true, force: true });
  try {
    await applyMigrations({ persistTo, quiet: true });
    const hub = await startHub({
      port: port ?? (await freePort()),
      persistTo,
      quiet: true,
      vars: { ...noRateLimits, ...vars },
    });
    const stop = async () => {
      await hub.stop();
      await removeState();
    };
    return { ...hub, persistTo, stop };
  } catch (err) {
    await removeState();
    throw err;
  }
}

/**
 * Bundles one Worker as `wrangler deploy` would, offline (`--dry-run`), into `outdir`, with esbuild's
 * metafile beside it (`bundle-meta.json`: every module the bundle holds). Returns the metafile's path.
 */
export async function bundleWorker(config, outdir) {
  await runWrangler(["deploy", "--dry-run", "-c", config, "--outdir", outdir, "--metafile"]);
  return join(outdir, "bundle-meta.json");
}

/**
 * Builds the Worker bundles (`bundleWorker`) and runs them in workerd through Miniflare,
 * with the D1, R2 and Durable Object bindings of wrangler.toml and state in `persistTo` (migrations applied
 * first). Unlike `wrangler dev`, nothing sits between clients and the runtime: no development proxy, no
 * reloads, and an inspector only when `inspectorPort` is given. For benchmarks. `vars` become variables of
 * both Workers. Returns { url, child, stop, output(), inspectorPort }.
 */
export async function startHubInWorkerd({ port, persistTo, vars = {}, inspectorPort }) {
  // One bundle per Worker, in bundles/<config>/.
  for (const config of workerConfigs) await bundleWorker(config, join(persistTo, "bundles", config));
  await applyMigrations({ persistTo, quiet: true });
  const child = spawn(
    process.execPath,
    [
      join(root, "scripts", "workerd-hub.mjs"),
      join(persistTo, "bundles"),
      persistTo,
      String(port),
      JSON.stringify(vars),
      ...(inspectorPort ? [String(inspectorPort)] : []),
    ],
    {
      cwd: root,
      env: { ...process.env, ...offlineEnv },
      stdio: "pipe",
    },
  );
  let output = "";
  child.stderr?.on("data", (d) => (output += d));
  const url = await new Promise((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      output += d;
      const ready = /^ready (\S+)$/m.exec(output);
      if (ready) resolve(ready[1]);
    });
    child.on("exit", (code) => reject(new Error(`the workerd hub exited with code ${code}\n${output}`)));
  });
  const stop = stopper(child);
  try {
    await waitForStatus(url, { child });
  } catch (err) {
    await stop();
    throw new Error(`${err.message}\n--- workerd hub output ---\n${output}`);
  }
  return { url, child, stop, output: () => output, inspectorPort };
}

/** Runs the reference sidecar (sidecar/index.ts) against a hub; resolves once the process is spawned. */
export function startSidecar({ hubUrl, secret, stateDir, quiet = false }) {
  // One process (tsx as a loader, not its CLI, which forks a child): a signal reaches the sidecar itself.
  const child = spawn(process.execPath, ["--import", "tsx", join(root, "sidecar", "index.ts")], {
    cwd: root,
    env: { ...process.env, HUB_URL: hubUrl, SIDECAR_SECRET: secret, SIDECAR_STATE_DIR: stateDir },
    stdio: quiet ? "pipe" : "inherit",
  });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const stop = stopper(child);
  return { child, stop, output: () => output };
}
