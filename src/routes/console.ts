/**
 * The web console is a single-page app among the Worker's static assets (dist/assets/console, built by
 * scripts/build-assets.mjs). Its scripts and styles are served before the Worker runs; every other
 * address under /console/ is a screen (`/console/t/…/instances/…`), answered here with the app's page so
 * a reload or a shared link opens that screen.
 */
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { notFound } from "../errors";
import type { AppEnv } from "../http/context";

export const CONSOLE_PATH = "/console/";

/**
 * The page may load only the hub's own scripts, styles and images, talk only to the hub, and be framed
 * by nobody. Inline styles stay allowed: the charts position their parts with style attributes.
 */
const consolePageHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
});

export const consoleRoutes = new Hono<AppEnv>()
  .get("/", (c) => c.redirect(CONSOLE_PATH))
  .get("/console", (c) => c.redirect(CONSOLE_PATH))
  .get("/console/*", consolePageHeaders, async (c) => {
    // A missing script or stylesheet stays a 404: answering it with the page would hide the fault.
    if (c.req.path.startsWith(`${CONSOLE_PATH}assets/`)) throw notFound(`No asset at ${c.req.path}`);
    const page = await c.env.ASSETS.fetch(new URL(CONSOLE_PATH, c.req.url));
    c.header("content-type", page.headers.get("content-type") ?? "text/html; charset=utf-8");
    c.header("cache-control", "no-cache");
    return c.body(await page.arrayBuffer(), page.status === 200 ? 200 : 404);
  });
