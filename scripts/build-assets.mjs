// Builds what the hub's Worker serves as static assets (wrangler.toml `[assets]`, dist/assets):
// the console (Vite, under /console/) and the API reference's script (under /docs/scalar/), so `/docs`
// works without the internet. Run by `npm start`, `npm test` and `npm run build:assets`.
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { build } from "vite";
import { root } from "./hub.mjs";

export const assetsDir = join(root, "dist", "assets");

export async function buildAssets({ quiet = false } = {}) {
  await build({ configFile: join(root, "console", "vite.config.ts"), logLevel: quiet ? "warn" : "info" });
  // The single-file (UMD) build: it loads no chunks of its own, so one file is all `/docs` needs.
  // The package exports no path to it, so it is read from where npm installs it.
  const scalar = join(root, "node_modules", "@scalar", "api-reference", "dist", "browser", "standalone.js");
  await mkdir(join(assetsDir, "docs", "scalar"), { recursive: true });
  await copyFile(scalar, join(assetsDir, "docs", "scalar", "standalone.js"));
}

if (import.meta.url === `file://${process.argv[1]}`) await buildAssets();
