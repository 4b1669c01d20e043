import { defineConfig, devices } from "@playwright/test";

// The browser tests (test/browser): Debian's Chromium (`apt-get install chromium`; Playwright's own
// browser download needs the internet) against the real hub, started fresh for the run.
const port = Number(process.env.BROWSER_HUB_PORT ?? 8797);
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "test/browser",
  outputDir: "test-results/browser",
  // One at a time: the machine has two cores, and the hub and a sidecar share them with the browser.
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: process.env.CI_REPORT ? [["list"], ["json", { outputFile: process.env.CI_REPORT }]] : [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: chromium,
      // Without these Chromium keeps calling home, and this machine has no way out.
      args: [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"] } }],
  webServer: {
    command: `node test/browser/serve-hub.mjs ${port}`,
    url: `http://127.0.0.1:${port}/status`,
    reuseExistingServer: false,
    timeout: 120_000,
    gracefulShutdown: { signal: "SIGTERM", timeout: 15_000 },
  },
});
