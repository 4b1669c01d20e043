import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { authRoutes } from "../routes/auth";
import { grantRoutes } from "../routes/grants";
import { meRoutes } from "../routes/me";
import { principalRoutes } from "../routes/principals";
import { roleRoutes } from "../routes/roles";
import { statusRoutes } from "../routes/status";
import { tenantRoutes } from "../routes/tenants";
import { errorResponse, handleError, handleNotFound } from "./errors";
import { requireJsonBody } from "./middleware/json-body";
import { loadSession } from "./middleware/session";
import { resolveTenant } from "./middleware/tenant";
import { mountOpenApi } from "./openapi";
import { createRouter } from "./router";

/** JSON bodies of the REST API; git packs and uploads have their own limits. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

export function createApp() {
  const app = createRouter();
  app.use("*", requestId());
  app.use("*", secureHeaders());
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: MAX_JSON_BODY_BYTES,
      onError: (c) =>
        errorResponse(c, 413, "payload_too_large", `Request body exceeds ${MAX_JSON_BODY_BYTES} bytes`, {
          maxBytes: MAX_JSON_BODY_BYTES,
        }),
    }),
  );
  app.use("/api/*", requireJsonBody());
  app.use("/api/*", loadSession());
  app.use("/api/tenants/:tenantId", resolveTenant());
  app.use("/api/tenants/:tenantId/*", resolveTenant());

  app.route("/", statusRoutes);
  app.route("/", authRoutes);
  app.route("/", meRoutes);
  app.route("/", tenantRoutes);
  app.route("/", principalRoutes);
  app.route("/", roleRoutes);
  app.route("/", grantRoutes);
  mountOpenApi(app);

  app.notFound(handleNotFound);
  app.onError(handleError);
  return app;
}

export type App = ReturnType<typeof createApp>;
