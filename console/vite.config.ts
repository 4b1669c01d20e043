// The console is a single-page app served by the hub's Worker as static assets under `/console/`
// (wrangler.toml `[assets]`); `npm run build:assets` writes it to dist/assets/console.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL("../dist/assets/console", import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // `npx vite console` proxies the API to a hub started with `npm start`.
    proxy: { "/api": "http://127.0.0.1:8787" },
  },
});
