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
}
