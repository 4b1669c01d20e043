// `npm test`: builds the console, runs the Vitest projects (arguments are passed to Vitest), then the
// browser tests (Playwright, test/browser) against a fresh hub. Exits non-zero when either fails.
// `npm run test:unit` and `npm run test:browser` run one side alone.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildAssets } from "./build-assets.mjs";
import { root } from "./hub.mjs";

/** Where the browser tests' JSON report goes; .ci/run adds it to the total. */
export const browserReport = join(root, ".playwright-report.json");

function run(bin, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "node_modules", ...bin), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: "inherit",
    });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

await buildAssets({ quiet: true });
const unit = await run(["vitest", "vitest.mjs"], ["run", ...process.argv.slice(2)]);
const browser = await run(["@playwright", "test", "cli.js"], ["test"], { CI_REPORT: browserReport });
try {
  const { stats } = JSON.parse(readFileSync(browserReport, "utf8"));
  console.log(`Browser tests: ${stats.expected + stats.flaky} passed, ${stats.unexpected} failed`);
} catch {
  console.log("Browser tests: no report was written");
}
process.exit(unit || browser);
