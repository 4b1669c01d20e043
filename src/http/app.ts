import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { statusRoutes } from "../routes/status";
import { errorResponse, handleError, handleNotFound } from "./errors";
import { requireJsonBody } from "./middleware/json-body";
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

  app.route("/", statusRoutes);
  mountOpenApi(app);

  app.notFound(handleNotFound);
  app.onError(handleError);
  return app;
}

export type App = ReturnType<typeof createApp>;
