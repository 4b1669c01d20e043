// Optional settings a deployment provides as Worker secrets or vars; `wrangler types` only sees wrangler.toml.
interface Env {
  /** Signs session cookies and bearer tokens. Required in production (`wrangler secret put AUTH_SECRET`). */
  AUTH_SECRET?: string;
  /** Public origin of the hub, e.g. https://hub.example.com. Defaults to http://127.0.0.1:8787. */
  AUTH_BASE_URL?: string;
  /** Extra browser origins allowed to use the session cookie, comma-separated. */
  AUTH_TRUSTED_ORIGINS?: string;
  /** Encrypts credential and OAuth client secrets at rest (any long random string). Required in production
   * (`wrangler secret put SECRETS_KEY`); without it a public development key is used. */
  SECRETS_KEY?: string;
  /** Rate limits (docs/http-conventions.md, "Rate limits"): requests per window for a tenant (default 600),
   * for a principal or a user (default 300) and for one address on sign-up and sign-in (default 10).
   * "0" turns a limit off. */
  RATE_LIMIT_TENANT_PER_MINUTE?: string;
  RATE_LIMIT_PRINCIPAL_PER_MINUTE?: string;
  RATE_LIMIT_AUTH_PER_MINUTE?: string;
  /** The length of those windows in seconds (default 60). */
  RATE_LIMIT_WINDOW_SECONDS?: string;
  /** Failed sign-ins one address may have (default 5) per `RATE_LIMIT_SIGN_IN_FAILURE_WINDOW_SECONDS`
   * (default 900) before its sign-ins are refused with 429; "0" turns it off. */
  RATE_LIMIT_SIGN_IN_FAILURES?: string;
  RATE_LIMIT_SIGN_IN_FAILURE_WINDOW_SECONDS?: string;
}
