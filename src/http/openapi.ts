/**
 * The OpenAPI 3.1 document is generated from the route definitions (every route is a `createRoute`
 * with zod schemas), never written by hand. `/docs` renders it with Scalar.
 */
import { Scalar } from "@scalar/hono-api-reference";
import type { Router } from "./router";

export const API_TITLE = "Agent Hub";
export const API_VERSION = "0.1.0";

export const tags = [
  { name: "System", description: "Liveness and the API description" },
  { name: "Auth", description: "Sign-up, sign-in and sessions (cookie for browsers, bearer token for scripts)" },
  { name: "User", description: "The signed-in user across tenants" },
  { name: "Tenants", description: "Tenants and their hierarchy" },
  { name: "Principals", description: "Members and agents of a tenant, invitations" },
  { name: "Roles", description: "Roles and role assignment" },
  { name: "Grants", description: "Grants and the explained evaluation of a principal's permissions" },
  { name: "Agents", description: "Agent definitions, their roles, versions and rollback" },
  { name: "Federation", description: "Trust between tenants: which tenants can discover this one's offerings" },
  { name: "Discovery", description: "Offerings of agents, searchable here and across trusting tenants" },
  { name: "Wallets", description: "Wallets, balances and their transactions" },
  { name: "Instances", description: "Running agent instances: launch, mail, live events, turns, stop" },
  {
    name: "Approvals",
    description: "What agents asked for when a grant said `ask`: approve once or always, or reject with a message",
  },
  { name: "Assets", description: "Git repositories for skills and other content, and their attachment to agents" },
  { name: "Git Tokens", description: "Tokens for git over HTTP: one repository, ref pattern, actions, expiry" },
  { name: "Providers", description: "Service definitions (LLM APIs, OAuth providers), inherited by child tenants" },
  { name: "OAuth Clients", description: "OAuth client registrations with providers; secrets are write-only" },
  { name: "Credentials", description: "API keys and tokens, encrypted at rest, write-only, resolved at launch" },
  { name: "Sidecars", description: "Runtime hosts that run a tenant's agent instances: registration, secrets, load" },
  { name: "Audit", description: "Who changed what, when and from where: the tenant's append-only audit log" },
] as const;

/** Where the hub serves the API reference's script from its static assets. */
export const SCALAR_SCRIPT_PATH = "/docs/scalar/standalone.js";

export function mountOpenApi(app: Router): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "Session token from the `set-auth-token` header of sign-in or sign-up",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "session", {
    type: "apiKey",
    in: "cookie",
    name: "better-auth.session_token",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: API_TITLE,
      version: API_VERSION,
      description:
        "Multi-tenant control plane for AI agents. Errors are always " +
        '`{"error":{"code","message","requestId","details?"}}`; lists are `{data, nextCursor}`. ' +
        "Every POST and PATCH takes an optional `Idempotency-Key` header (1–255 printable ASCII): the same " +
        "key and request within 24 hours replays the first answer with `Idempotent-Replayed: true`; the " +
        "key with another request is a 422 `idempotency_key_reused`, while the first still runs a 409 " +
        "`idempotency_key_in_flight`. JSON API responses carry an `X-D1-Bookmark`; send the latest one back " +
        "and a read never returns older data than you wrote (a malformed one is a 400 `invalid_bookmark`).",
    },
    tags: [...tags],
    security: [{ bearer: [] }, { session: [] }],
  });
  // Scalar's script is one of the hub's own static assets (scripts/build-assets.mjs), and its default
  // web fonts are off: the page works without the internet.
  app.get(
    "/docs",
    Scalar({
      url: "/openapi.json",
      pageTitle: `${API_TITLE} API reference`,
      cdn: SCALAR_SCRIPT_PATH,
      withDefaultFonts: false,
    }),
  );
}
