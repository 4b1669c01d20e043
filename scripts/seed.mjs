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
