import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { except } from "hono/combine";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { timing } from "hono/timing";
import type { AppEnv } from "./http/context";
import { errorResponse, handleError, handleNotFound } from "./http/error-envelope";
import { apiCors } from "./http/middleware/cors";
import { d1Session } from "./http/middleware/d1-session";
import { idempotency } from "./http/middleware/idempotency";
import { requireJsonBody } from "./http/middleware/json-body";
import { rateLimit } from "./http/middleware/rate-limit";
import { loadSession } from "./http/middleware/session";
import { resendingStaleAccess, resolveTenant } from "./http/middleware/tenant";
import { mountOpenApi } from "./http/openapi";
import { createRouter } from "./http/router";
import { agentDataRoutes } from "./routes/agent-data";
import { agentRoutes } from "./routes/agents";
import { approvalRoutes } from "./routes/approvals";
import { assetRoutes } from "./routes/assets";
import { auditLogRoutes } from "./routes/audit-log";
import { authRoutes, isAuthRequest } from "./routes/auth";
import { consoleRoutes } from "./routes/console";
import { credentialRoutes } from "./routes/credentials";
import { federationRoutes } from "./routes/federation";
import { gitHttpRoutes, isGitRequest } from "./routes/git-http";
import { gitTokenRoutes } from "./routes/git-tokens";
import { grantRoutes } from "./routes/grants";
import { instanceRoutes } from "./routes/instances";
import { meRoutes } from "./routes/me";
import { modelRoutes } from "./routes/models";
import { oauthClientRoutes } from "./routes/oauth-clients";
import { observabilityRoutes } from "./routes/observability";
import { offeringRoutes } from "./routes/offerings";
import { principalRoutes } from "./routes/principals";
import { providerRoutes } from "./routes/providers";
import { roleRoutes } from "./routes/roles";
import { isSidecarChannel, sidecarChannelDocs, sidecarChannelRoutes } from "./routes/sidecar-channels";
import { sidecarRoutes } from "./routes/sidecars";
import { signingKeyRoutes } from "./routes/signing-key";
import { statusRoutes } from "./routes/status";
import { tenantRoutes } from "./routes/tenants";
import { walletRoutes } from "./routes/wallets";

/** JSON bodies of the REST API; git packs and uploads have their own limits. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

export function createApp() {
  const app = createRouter();
  app.use("*", requestId());
  app.use("*", secureHeaders());
  // The JSON API's middleware; git smart HTTP authenticates with git tokens and carries packs instead.
  const api = (...middleware: MiddlewareHandler<AppEnv>[]) => except(isGitRequest, ...middleware);
  // First, so a preflight is answered before authentication; the sidecar channels are no browser API.
  app.use("/api/*", except([isGitRequest, isSidecarChannel], apiCors()));
  // `Server-Timing`: the whole request and its D1 round trips (set by the D1 session).
  app.use("/api/*", except([isGitRequest, isSidecarChannel], timing()));
  // Before anything reads D1: the request's queries go through one D1 session (read replication).
  app.use("/api/*", except([isGitRequest, isSidecarChannel], d1Session()));
  app.use(
    "/api/*",
    api(
      bodyLimit({
        maxSize: MAX_JSON_BODY_BYTES,
        onError: (c) =>
          errorResponse(c, 413, "payload_too_large", `Request body exceeds ${MAX_JSON_BODY_BYTES} bytes`, {
            maxBytes: MAX_JSON_BODY_BYTES,
          }),
      }),
      requireJsonBody(),
    ),
  );
  // The caller: on tenant routes together with the tenant, its principal and grants (one D1 round trip),
  // elsewhere alone.
  app.use("/api/tenants/:tenantId", resolveTenant());
  app.use("/api/tenants/:tenantId/*", api(resolveTenant()));
  app.use("/api/*", api(loadSession()));
  // Once the caller and tenant are known, before any work; sign-up and sign-in count per address.
  app.use("/api/*", except([isGitRequest, isSidecarChannel], rateLimit()));
  // Once the caller and tenant are known; better-auth, git and the sidecar channels are no JSON resources.
  app.use("/api/*", except([isGitRequest, isSidecarChannel, isAuthRequest], idempotency()));

  app.route("/", gitHttpRoutes);
  app.route("/", sidecarChannelRoutes);
  app.route("/", sidecarChannelDocs);
  app.route("/", statusRoutes);
  app.route("/", signingKeyRoutes);
  app.route("/", authRoutes);
  app.route("/", meRoutes);
  app.route("/", tenantRoutes);
  app.route("/", principalRoutes);
  app.route("/", roleRoutes);
  app.route("/", grantRoutes);
  app.route("/", agentRoutes);
  app.route("/", federationRoutes);
  app.route("/", offeringRoutes);
  app.route("/", walletRoutes);
  app.route("/", gitTokenRoutes);
  app.route("/", providerRoutes);
  app.route("/", oauthClientRoutes);
  app.route("/", credentialRoutes);
  app.route("/", modelRoutes);
  app.route("/", assetRoutes);
  app.route("/", instanceRoutes);
  app.route("/", approvalRoutes);
  app.route("/", auditLogRoutes);
  // After the definition and instance routes: `/agents/{agentId}/…` must not shadow theirs.
  app.route("/", agentDataRoutes);
  app.route("/", observabilityRoutes);
  app.route("/", sidecarRoutes);
  mountOpenApi(app);
  app.route("/", consoleRoutes);

  app.notFound(handleNotFound);
  app.onError(handleError);
  // `app.request` (the tests) goes through `app.fetch` too.
  app.fetch = resendingStaleAccess(app.fetch);
  return app;
}

export type App = ReturnType<typeof createApp>;
