/**
 * Approvals end to end, with the hub and the reference sidecar as separate processes: an agent whose
 * grants say `ask` waits for a person, for a gated tool call and for an API request made with its own
 * token. Approved once, it runs and asks again next time; approved always, it stops asking and the allow
 * grant is visible; rejected, the agent gets the message.
 */
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { client } from "./support/hub-client";
import {
  instanceEvents,
  instancePath,
  type RuntimeTenant,
  runSidecar,
  setUpRuntimeTenant,
  until,
  waitOnline,
} from "./support/runtime-tenant";
import type { SseClient } from "./support/sse";

const hubUrl = inject("hubUrl");
const hub = client(hubUrl);

describe("an agent waits for a person", () => {
  let s: RuntimeTenant;
  let sidecar: ReturnType<typeof runSidecar>;
  let instanceId: string;
  let principalId: string;
  let walletId: string;
  let sse: SseClient;
  const base = () => `/api/tenants/${s.tenantId}`;
  const grant = (resource: string, action: string, effect: string) =>
    hub.ok("POST", `${base()}/grants`, s.owner.token, { principalId, resource, action, effect });

  /** Mails the agent and resolves with the text of its reply (the next `connector.reply` on the stream). */
  async function ask(content: string): Promise<string> {
    const before = replies().length;
    await hub.ok("POST", `${instancePath(s, instanceId)}/mail`, s.owner.token, { content });
    await sse.waitFor(() => replies().length > before, 30_000);
    return replies()[before] as string;
  }
  const replies = () =>
    sse.messages.filter((m) => m.data.type === "connector.reply").map((m) => m.data.data.content as string);

  /** The next approval the agent asks for: on the stream, and in the owner's inbox. */
  async function nextApproval(seen: number) {
    await sse.waitFor((m) => m.filter((x) => x.data.type === "approval.requested").length > seen, 30_000);
    const requested = sse.messages.filter((m) => m.data.type === "approval.requested")[seen]?.data.data;
    const inbox = await hub.ok("GET", "/api/me/approvals", s.owner.token);
    expect(inbox.data.map((a: { id: string }) => a.id)).toContain(requested.id);
    return requested as { id: string; resource: string; action: string; context: Record<string, unknown> };
  }
  const approvalsAsked = () => sse.messages.filter((m) => m.data.type === "approval.requested").length;
  const decide = (id: string, verb: "approve" | "reject", body: Record<string, unknown>) =>
    hub.ok("POST", `${base()}/approvals/${id}/${verb}`, s.owner.token, body);

  beforeAll(async () => {
    s = await setUpRuntimeTenant(hubUrl);
    walletId = (await hub.ok("GET", `${base()}/wallets`, s.owner.token)).data[0].id;
    await hub.ok("POST", `${base()}/wallets/${walletId}/transactions`, s.owner.token, {
      direction: "inbound",
      amount: "100",
    });
    sidecar = runSidecar(hubUrl, s);
    await waitOnline(hubUrl, s);
    const launched = await hub.call("POST", `${base()}/agents/instances`, s.owner.token, { agentId: s.agentId });
    expect(launched.status, JSON.stringify(launched.body) + sidecar.output()).toBe(201);
    instanceId = launched.body.id;
    principalId = launched.body.principalId;
    expect(principalId).toMatch(/^prn_/);
    await grant("tool:note", "invoke", "ask");
    await grant("tool:clock", "invoke", "ask");
    await grant(`wallet:${walletId}`, "read", "allow");
    await grant(`wallet:${walletId}`, "manage", "ask");
    sse = instanceEvents(hubUrl, s, instanceId);
    await sse.open();
  }, 60_000);

  afterAll(async () => {
    await sse?.close();
    await sidecar?.stop();
    if (s) await rm(s.stateDir, { recursive: true, force: true });
  });

  it("a gated tool: once runs it and asks again next time; always stops the asking", async () => {
    const firstReply = ask('/tool note {"text":"first"}');
    const first = await nextApproval(0);
    expect(first).toMatchObject({ resource: "tool:note", action: "invoke", context: { text: "first" } });
    // The instance shows that it waits.
    const shown = await until("waiting_approval", async () => {
      const res = await hub.ok("GET", instancePath(s, instanceId), s.owner.token);
      return res.runtimeStatus === "waiting_approval" && res;
    });
    expect(shown.runtimeStatus).toBe("waiting_approval");
    await decide(first.id, "approve", { scope: "once" });
    expect(await firstReply).toBe("Tool note returned: Noted (1): first");

    const secondReply = ask('/tool note {"text":"second"}');
    const second = await nextApproval(1);
    expect(second.id).not.toBe(first.id);
    await decide(second.id, "approve", { scope: "always" });
    expect(await secondReply).toBe("Tool note returned: Noted (2): second");

    // No more asking: the third call runs at once, and the allow grant is there for anyone to see.
    expect(await ask('/tool note {"text":"third"}')).toBe("Tool note returned: Noted (3): third");
    expect(approvalsAsked()).toBe(2);
    const grants = await hub.ok("GET", `${base()}/grants?principalId=${principalId}`, s.owner.token);
    expect(grants.data.filter((g: { resource: string }) => g.resource === "tool:note")).toEqual([
      expect.objectContaining({ action: "invoke", effect: "allow", origin: "approval" }),
    ]);
    const decided = sse.messages.filter((m) => m.data.type === "approval.decided").map((m) => m.data.data);
    expect(decided.map((a) => [a.id, a.status, a.scope])).toEqual([
      [first.id, "approved", "once"],
      [second.id, "approved", "always"],
    ]);
  });

  it("a rejection reaches the agent with its message", async () => {
    const seen = approvalsAsked();
    const reply = ask("/tool clock");
    const asked = await nextApproval(seen);
    await decide(asked.id, "reject", { message: "Not during the freeze" });
    expect(await reply).toBe("Tool clock failed: A person rejected this call: Not during the freeze");
  });

  it("an API request with the agent's own token: 202, then it goes through once approved", async () => {
    const path = `${base()}/wallets/${walletId}/transactions`;
    const call = `/tool hub_api {"method":"POST","path":"${path}","body":{"direction":"outbound","amount":"20"}}`;
    const balance = async () => (await hub.ok("GET", `${base()}/wallets/${walletId}`, s.owner.token)).balance;

    let seen = approvalsAsked();
    let reply = ask(call);
    const once = await nextApproval(seen);
    expect(once).toMatchObject({
      resource: `wallet:${walletId}`,
      action: "manage",
      context: { method: "POST", path, body: { direction: "outbound", amount: "20" } },
    });
    await decide(once.id, "approve", { scope: "once" });
    expect(await reply).toMatch(/^Tool hub_api returned: HTTP 201 \{.*"amount":"20"/);
    expect(await balance()).toBe("80");

    // Once was for that request only: the same again asks again, and a rejection moves nothing.
    seen = approvalsAsked();
    reply = ask(call);
    const rejected = await nextApproval(seen);
    await decide(rejected.id, "reject", { message: "Ask finance" });
    expect(await reply).toBe("Tool hub_api failed: A person rejected this request: Ask finance");
    expect(await balance()).toBe("80");

    // Always: the agent may now manage the wallet without asking.
    seen = approvalsAsked();
    reply = ask(call);
    await decide((await nextApproval(seen)).id, "approve", { scope: "always" });
    expect(await reply).toMatch(/^Tool hub_api returned: HTTP 201/);
    expect(await ask(call)).toMatch(/^Tool hub_api returned: HTTP 201/);
    expect(approvalsAsked()).toBe(seen + 1);
    expect(await balance()).toBe("40");
  });
});
