// The hub the browser tests drive (playwright.config.ts `webServer`): fresh local state in a temporary
// directory, migrations applied, `wrangler dev` on the given port, rate limits off (the tests sign up
// and send from one address). The console must already be built (`npm run build:assets`; `npm test`
// does it). Runs until Playwright stops it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyMigrations, noRateLimits, startHub } from "../../scripts/hub.mjs";

const port = Number(process.argv[2] ?? 8797);
const persistTo = await mkdtemp(join(tmpdir(), "agent-hub-browser-"));
await applyMigrations({ persistTo, quiet: true });
// The console signs in from the hub's own origin, which better-auth must know.
const vars = { ...noRateLimits, AUTH_BASE_URL: `http://127.0.0.1:${port}` };
const hub = await startHub({ port, persistTo, quiet: true, vars });
console.log(`browser-test hub on ${hub.url}`);

const stop = async () => {
  await hub.stop();
  await rm(persistTo, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
