/**
 * The web console is a single-page app among the Worker's static assets (dist/assets/console, built by
 * scripts/build-assets.mjs). Files that exist are served before the Worker runs; what reaches here is a
 * screen's address (`/console/t/…/instances/…`), answered with the app's page so a reload or a shared
 * link opens that screen.
 */
import { Hono } from "hono";
import { notFound } from "../errors";
import type { AppEnv } from "../http/context";

export const CONSOLE_PATH = "/console/";

export const consoleRoutes = new Hono<AppEnv>()
  .get("/", (c) => c.redirect(CONSOLE_PATH))
  .get("/console", (c) => c.redirect(CONSOLE_PATH))
  .get("/console/*", async (c) => {
    // A missing script or stylesheet stays a 404: answering it with the page would hide the fault.
    if (c.req.path.startsWith(`${CONSOLE_PATH}assets/`)) throw notFound(`No asset at ${c.req.path}`);
    const page = await c.env.ASSETS.fetch(new URL(CONSOLE_PATH, c.req.url));
    return new Response(page.body, { status: page.status, headers: page.headers });
  });
