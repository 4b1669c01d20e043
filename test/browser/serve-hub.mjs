// The hub the browser tests drive (playwright.config.ts `webServer`): fresh local state, migrations
// applied, `wrangler dev` on the given port, rate limits off (the tests sign up and send from one
// address). The console must already be built (`npm run build:assets`; `npm test` does it). Runs until
// Playwright stops it.
import { startFreshHub } from "../../scripts/hub.mjs";

const port = Number(process.argv[2] ?? 8797);
// The console signs in from the hub's own origin, which better-auth must know.
const hub = await startFreshHub({
  port,
  prefix: "agent-hub-browser-",
  vars: { AUTH_BASE_URL: `http://127.0.0.1:${port}` },
});
console.log(`browser-test hub on ${hub.url}`);

const stop = async () => {
  await hub.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
