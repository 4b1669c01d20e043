// Seeds the demo user and tenant through the public API (idempotent): used by `npm start`.
export const demo = {
  name: "Demo User",
  email: "demo@agent-hub.local",
  password: "agent-hub-demo",
  tenantName: "Demo",
  tenantSlug: "demo",
};

async function call(baseUrl, path, { token, body, method } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${baseUrl}${path}`, {
    method: method ?? (body ? "POST" : "GET"),
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** Signs the demo user up (or in) and makes sure they own the demo tenant. */
export async function seedDemo(baseUrl, who = demo) {
  let auth = await call(baseUrl, "/api/auth/sign-up/email", {
    body: { name: who.name, email: who.email, password: who.password },
  });
  const created = auth.status === 200;
  if (!created) {
    auth = await call(baseUrl, "/api/auth/sign-in/email", { body: { email: who.email, password: who.password } });
  }
  if (auth.status !== 200) throw new Error(`Demo sign-in failed: ${auth.status} ${JSON.stringify(auth.body)}`);
  const token = auth.headers.get("set-auth-token");

  const memberships = await call(baseUrl, "/api/me/principals?limit=100", { token });
  let tenantId = memberships.body.data.find((m) => m.tenantSlug === who.tenantSlug)?.tenantId;
  if (!tenantId) {
    const res = await call(baseUrl, "/api/tenants", {
      token,
      body: { name: who.tenantName, slug: who.tenantSlug },
    });
    if (res.status !== 201) throw new Error(`Demo tenant creation failed: ${res.status} ${JSON.stringify(res.body)}`);
    tenantId = res.body.id;
  }
  return { ...who, token, tenantId, userCreated: created };
}

/**
 * Makes the demo tenant runnable: an offline `echo` provider with a credential, an "Echo" agent, and a
 * registered sidecar whose secret is kept in `stateFile` (secrets are shown only once by the API).
 */
export async function seedDemoRuntime(baseUrl, { token, tenantId }, stateFile) {
  const { existsSync, readFileSync, writeFileSync, mkdirSync } = await import("node:fs");
  const { dirname } = await import("node:path");
  const base = `/api/tenants/${tenantId}`;
  const find = async (path, name) => {
    const res = await call(baseUrl, `${base}/${path}?limit=100`, { token });
    return res.body?.data?.find((x) => x.name === name);
  };
  const ensure = async (path, name, body) => {
    const found = await find(path, name);
    if (found) return found;
    const res = await call(baseUrl, `${base}/${path}`, { token, body: { name, ...body } });
    if (res.status !== 201) throw new Error(`Seeding ${path} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const provider = await ensure("providers", "echo", {
    plugin: "echo",
    metadata: {
      baseURL: "http://127.0.0.1/echo",
      // Priced like a mid-range hosted model, so a demo turn has a cost to show in wallets and usage.
      models: [{ id: "echo", name: "Echo (offline)", pricing: { input: "3", output: "15", currency: "USD" } }],
    },
  });
  await ensure("credentials", "echo-key", { type: "api_key", providerId: provider.id, secret: "not-a-real-key" });
  // Model calls are charged to the tenant's default wallet; the echo model is free, but a launch needs one.
  const wallet = await ensure("wallets", "Demo credits", { backendType: "credits", currency: "USD", isDefault: true });
  if (wallet.balance === "0") {
    await call(baseUrl, `${base}/wallets/${wallet.id}/transactions`, {
      token,
      body: { direction: "inbound", amount: "100", senderId: "demo-seed", requestId: "demo-seed-credit" },
    });
  }
  const agent = await ensure("agents/definitions", "Echo", {
    description: "Replies with what you send it (offline, deterministic)",
    systemPrompt: "You are a helpful agent. Reply briefly.",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
  });

  let sidecar = null;
  if (existsSync(stateFile)) {
    const saved = JSON.parse(readFileSync(stateFile, "utf8"));
    const res = await call(baseUrl, `${base}/sidecars/${saved.id}`, { token });
    if (saved.tenantId === tenantId && res.status === 200) sidecar = saved;
  }
  if (!sidecar) {
    const res = await call(baseUrl, `${base}/sidecars`, {
      token,
      body: { name: `demo-sidecar-${Date.now().toString(36)}`, capacity: 16 },
    });
    if (res.status !== 201) throw new Error(`Sidecar registration failed: ${res.status} ${JSON.stringify(res.body)}`);
    sidecar = { id: res.body.id, secret: res.body.secret, tenantId };
    mkdirSync(dirname(stateFile), { recursive: true });
    writeFileSync(stateFile, JSON.stringify(sidecar), { mode: 0o600 });
  }
  return { agentId: agent.id, sidecarId: sidecar.id, sidecarSecret: sidecar.secret };
}
