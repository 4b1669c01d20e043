/**
 * A tenant ready to run agents end to end: an owner, a registered sidecar (run as its own process), an
 * echo provider and credential, a default wallet and an echo agent; and the waits these tests share.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { startSidecar } from "../../../scripts/hub.mjs";
import { sleep, until } from "../../support/poll";
import { client, type Session } from "./hub-client";
import { SseClient } from "./sse";

export { sleep, until };

export type RuntimeTenant = {
  owner: Session;
  tenantId: string;
  agentId: string;
  sidecarId: string;
  secret: string;
  stateDir: string;
};

export async function setUpRuntimeTenant(hubUrl: string): Promise<RuntimeTenant> {
  const hub = client(hubUrl);
  const owner = await hub.signUp("Runtime Owner");
  const tenantId = (await hub.createTenant(owner)).id;
  const base = `/api/tenants/${tenantId}`;
  const sidecar = await hub.ok("POST", `${base}/sidecars`, owner.token, { name: "e2e-sidecar", capacity: 4 });
  expect(sidecar.secret).toMatch(/^ahs_/);
  const provider = await hub.ok("POST", `${base}/providers`, owner.token, {
    name: "echo",
    plugin: "echo",
    metadata: { baseURL: "http://127.0.0.1/echo" },
  });
  await hub.ok("POST", `${base}/credentials`, owner.token, {
    name: "echo-key",
    type: "api_key",
    providerId: provider.id,
    secret: "unused-offline",
  });
  // The tenant's first wallet is its default: launches charge it.
  await hub.ok("POST", `${base}/wallets`, owner.token, { name: "Budget", backendType: "credits", currency: "USD" });
  const agent = await hub.ok("POST", `${base}/agents/definitions`, owner.token, {
    name: "Echo",
    systemPrompt: "You repeat what you are told.",
    modelConfig: { defaultModel: "echo" },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
  });
  const stateDir = await mkdtemp(join(tmpdir(), "agent-hub-sidecar-"));
  return { owner, tenantId, agentId: agent.id, sidecarId: sidecar.id, secret: sidecar.secret, stateDir };
}

export function runSidecar(hubUrl: string, s: RuntimeTenant) {
  return startSidecar({ hubUrl, secret: s.secret, stateDir: s.stateDir, quiet: true });
}

export async function waitOnline(hubUrl: string, s: RuntimeTenant) {
  const hub = client(hubUrl);
  await until("the sidecar to be online", async () => {
    const res = await hub.call("GET", `/api/tenants/${s.tenantId}/sidecars/${s.sidecarId}`, s.owner.token);
    return res.body?.status === "online";
  });
}

export const instancePath = (s: RuntimeTenant, id: string) => `/api/tenants/${s.tenantId}/agents/instances/${id}`;

export function instanceEvents(hubUrl: string, s: RuntimeTenant, id: string) {
  return new SseClient(`${hubUrl}${instancePath(s, id)}/events`, { authorization: `Bearer ${s.owner.token}` });
}
