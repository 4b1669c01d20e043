/**
 * Helpers for the instance runtime's tests over HTTP: a tenant set up to launch (provider, credential,
 * agent definition, registered sidecar), launching on a test sidecar, SSE subscriptions and row queries.
 */
import { env, exports } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { expect } from "vitest";
import { getDb } from "../../../src/db/client";
import { agentInstance, agentSession, grant, principal, sessionMail } from "../../../src/db/schema";
import { sleep, until } from "../../support/poll";
import { api, createTenant, type TestTenant, unique } from "./api";
import type { TestSidecar } from "./test-sidecar";

export { sleep, until };

export const db = getDb(env);
export const SLOW = { timeout: 40_000 };
export const tenantBase = (tenantId: string) => `/api/tenants/${tenantId}`;
export const instancesOf = (tenantId: string) => `${tenantBase(tenantId)}/agents/instances`;

export type Runtime = {
  t: TestTenant;
  token: string;
  providerId: string;
  credentialId: string;
  agentId: string;
  sidecarId: string;
  secret: string;
  walletId: string;
};

export async function ok(path: string, token: string, body?: unknown, method?: string) {
  const res = await api(path, { token, body, ...(method ? { method } : {}) });
  expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

export async function createAgent(r: Pick<Runtime, "t" | "token">, fields: Record<string, unknown> = {}) {
  return (await ok(`${tenantBase(r.t.id)}/agents/definitions`, r.token, {
    name: unique("Echo "),
    systemPrompt: "You repeat what you are told.",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
    ...fields,
  })) as { id: string; name: string };
}

/** A tenant with an echo provider, a tenant credential, an agent definition and a registered sidecar. */
export async function setUpRuntime(): Promise<Runtime> {
  const t = await createTenant();
  const token = t.owner.token;
  const base = tenantBase(t.id);
  const provider = await ok(`${base}/providers`, token, {
    name: "echo",
    plugin: "echo",
    metadata: { baseURL: "http://127.0.0.1/echo" },
  });
  const credential = await ok(`${base}/credentials`, token, {
    name: "echo-key",
    type: "api_key",
    providerId: provider.id,
    secret: "echo-secret-value",
  });
  const agent = await createAgent({ t, token });
  const sidecar = await ok(`${base}/sidecars`, token, { name: unique("host-"), capacity: 50 });
  // The tenant's first wallet is its default one: launches charge it (the echo model is unpriced here).
  const wallet = await ok(`${base}/wallets`, token, {
    name: "Runtime budget",
    backendType: "credits",
    currency: "USD",
  });
  return {
    t,
    token,
    providerId: provider.id,
    credentialId: credential.id,
    agentId: agent.id,
    sidecarId: sidecar.id,
    secret: sidecar.secret,
    walletId: wallet.id,
  };
}

export async function launch(r: Runtime, sidecar: TestSidecar, agentId = r.agentId, walletId?: string) {
  const res = await api(instancesOf(r.t.id), { token: r.token, body: { agentId, ...(walletId ? { walletId } : {}) } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const channel = await sidecar.instance(res.body.id);
  return { instance: res.body as Record<string, any> & { id: string; address: string }, channel };
}

export const instanceRows = (agentId: string) =>
  db.select().from(agentInstance).where(eq(agentInstance.agentId, agentId));
export const agentPrincipals = (tenantId: string) =>
  db
    .select()
    .from(principal)
    .where(and(eq(principal.tenantId, tenantId), eq(principal.kind, "agent")));
export const sessionsOf = (agentId: string) => db.select().from(agentSession).where(eq(agentSession.agentId, agentId));
export const mailRows = (instanceId: string) =>
  db.select().from(sessionMail).where(eq(sessionMail.instanceId, instanceId));
export const agentStateGrants = (tenantId: string) =>
  db
    .select()
    .from(grant)
    .where(eq(grant.tenantId, tenantId))
    .then((rows) => rows.filter((g) => g.resource.startsWith("agent-state:ins_")));

/** An instance's SSE stream through the Worker, read as text; `headers` such as `Last-Event-ID`. */
export async function subscribe(path: string, token: string, query = "", headers: Record<string, string> = {}) {
  const res = await exports.default.fetch(
    new Request(`http://hub.test${path}/events${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } }),
  );
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  // Chunks are kept apart and joined on demand: appending megabytes to one string and searching it after
  // every chunk would make a large stream quadratic.
  const parts: string[] = [];
  const text = () => parts.join("");
  return {
    res,
    /** Reads until the text so far contains `needle` (or the stream ends); returns all of it. */
    async until(needle: string): Promise<string> {
      let tail = text();
      while (!tail.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = decoder.decode(value, { stream: true });
        parts.push(chunk);
        tail = tail.slice(-needle.length) + chunk;
      }
      return text();
    },
    /** The next chunk alone. */
    async nextChunk(): Promise<string> {
      return decoder.decode((await reader.read()).value);
    },
    /** Everything until the stream ends, and how it ended: closed by the hub, or cut off. */
    async rest(): Promise<{ text: string; end: "closed" | "cut" }> {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return { text: text(), end: "closed" };
          parts.push(decoder.decode(value, { stream: true }));
        }
      } catch {
        return { text: text(), end: "cut" };
      }
    },
    close: () => reader.cancel(),
  };
}

/** The text of a JMAP-style mail view. */
export const textOf = (mail: any) => mail.bodyValues[mail.textBody[0].partId].value as string;
