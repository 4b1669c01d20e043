/**
 * Tool calls in the reference sidecar, against the fake hub: a gated tool is asked for first
 * (`gate.request`), runs on allow, waits on pending (blocked → decision → cleared) and gives the model the
 * refusal on deny, reject or expiry; `hub_api` calls the REST API with the instance's own token and resends
 * the same request once its approval comes; an abort while waiting ends the turn without a reply.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Sidecar } from "./sidecar";
import { agentConfig, FakeHub, type Frame, userMail } from "./support/fake-hub";

const SECRET = "ahs_test_secret";
const USER = "ada@example.com";

let hub: FakeHub;
let stateDir: string;
let sidecar: Sidecar;

beforeEach(async () => {
  hub = await FakeHub.start(SECRET);
  stateDir = await mkdtemp(join(tmpdir(), "sidecar-tools-"));
  sidecar = new Sidecar({
    hubUrl: hub.url,
    secret: SECRET,
    stateDir,
    backoff: { initialMs: 20, maxMs: 200 },
    models: { echoDelayMs: 1 },
    gateAnswerTimeoutMs: 300,
  });
});

afterEach(async () => {
  await sidecar.stop();
  await hub.close();
  await rm(stateDir, { recursive: true, force: true });
});

type Event = { type: string; seq: number; data: Record<string, any> };

const events = (instanceId: string) =>
  hub
    .frames(instanceId)
    .filter((f) => f.type === "agent.event")
    .map((f) => f.event as Event);

async function deploy(instanceId: string): Promise<void> {
  await sidecar.start();
  await hub.waitFor("control", (f) => f.type === "ready");
  hub.assign(instanceId, agentConfig(instanceId, { apiToken: `ahi_token_of_${instanceId}` }));
  await hub.waitFor(instanceId, (f) => f.type === "session.start.ack");
}

let mails = 0;
function sendMail(instanceId: string, text: string): void {
  mails += 1;
  const agentAddress = hub.instance(instanceId).agentAddress;
  hub.sendInstance(instanceId, {
    type: "mail.inbound",
    agentAddress,
    mailId: `mail_${mails}`,
    rawMessage: userMail({ from: USER, to: agentAddress, text, messageId: `<m${mails}@hub.test>`, subject: "Tools" }),
  });
}

const gateRequest = (instanceId: string, index = 0) =>
  hub.until(
    () => hub.frames(instanceId).filter((f) => f.type === "gate.request")[index],
    4_000,
    `gate.request #${index}`,
  );

function answer(instanceId: string, request: Frame, decision: Record<string, unknown>): void {
  hub.sendInstance(instanceId, {
    type: "gate.decision",
    requestId: request.requestId,
    agentAddress: hub.instance(instanceId).agentAddress,
    ...decision,
  });
}

function decide(instanceId: string, approvalId: string, decision: string, extra: Record<string, unknown> = {}) {
  hub.sendInstance(instanceId, {
    type: "approval.decision",
    agentAddress: hub.instance(instanceId).agentAddress,
    approvalId,
    requestId: null,
    decision,
    scope: decision === "approved" ? "once" : null,
    message: null,
    ...extra,
  });
}

const reply = (instanceId: string, index = 0) =>
  hub.until(
    () => events(instanceId).filter((e) => e.type === "connector.reply")[index],
    4_000,
    `connector.reply #${index}`,
  );

describe("gated tool calls", () => {
  it("asks before running; on allow the tool runs and its result goes back to the model", async () => {
    await deploy("ins_allow");
    sendMail("ins_allow", '/tool note {"text":"buy milk"}');
    const request = await gateRequest("ins_allow");
    expect(request).toMatchObject({
      agentAddress: hub.instance("ins_allow").agentAddress,
      resource: "tool:note",
      action: "invoke",
      context: { text: "buy milk" },
    });
    answer("ins_allow", request, { decision: "allow" });
    expect((await reply("ins_allow")).data.content).toBe("Tool note returned: Noted (1): buy milk");

    const types = events("ins_allow").map((e) => e.type);
    expect(types).toEqual([
      "inference.start",
      "inference.tool_call.start",
      "inference.tool_call.end",
      "inference.usage",
      "inference.done",
      "tool.start",
      "tool.done",
      "inference.start",
      ...types.slice(8, -3), // the second call's text deltas
      "inference.usage",
      "inference.done",
      "connector.reply",
    ]);
    const first = events("ins_allow").find((e) => e.type === "inference.done")?.data;
    const callId = first?.turn.content[0].callId;
    expect(first?.turn.content).toEqual([{ type: "tool_call", callId, name: "note", arguments: { text: "buy milk" } }]);
    expect(events("ins_allow").find((e) => e.type === "tool.done")?.data).toEqual({
      result: { callId, content: "Noted (1): buy milk", isError: false },
    });
    // The reply mail carries the final text.
    await hub.waitFor("ins_allow", (f) => f.type === "mail.outbound");
  });

  it("on deny, and when the hub does not answer, the model gets the refusal as the tool's error", async () => {
    await deploy("ins_deny");
    sendMail("ins_deny", "/tool clock");
    answer("ins_deny", await gateRequest("ins_deny"), { decision: "deny", reason: "no grant allows it" });
    expect((await reply("ins_deny")).data.content).toBe("Tool clock failed: Not allowed: no grant allows it");

    sendMail("ins_deny", "/tool clock"); // nobody answers this one
    expect((await reply("ins_deny", 1)).data.content).toBe(
      "Tool clock failed: Not allowed: the hub did not answer the gate request",
    );
  });

  it("on pending, waits (blocked, then cleared) and runs once approved", async () => {
    await deploy("ins_pending");
    sendMail("ins_pending", '/tool note {"text":"wait for me"}');
    answer("ins_pending", await gateRequest("ins_pending"), {
      decision: "pending",
      approvalId: "apr_1",
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    await hub.until(() => events("ins_pending").find((e) => e.type === "reactor.gate.blocked"));
    expect(events("ins_pending").find((e) => e.type === "reactor.gate.blocked")?.data).toEqual({
      reason: "approval",
      gateId: "apr_1",
    });
    expect(events("ins_pending").some((e) => e.type === "tool.done")).toBe(false);

    decide("ins_pending", "apr_1", "approved");
    expect((await reply("ins_pending")).data.content).toBe("Tool note returned: Noted (1): wait for me");
    expect(events("ins_pending").find((e) => e.type === "reactor.gate.cleared")?.data).toEqual({
      gateId: "apr_1",
      reason: "resolved",
    });
  });

  it("gives the model a rejection's message, and says so when nobody approved in time", async () => {
    await deploy("ins_reject");
    sendMail("ins_reject", "/tool clock");
    answer("ins_reject", await gateRequest("ins_reject"), {
      decision: "pending",
      approvalId: "apr_r",
      expiresAt: null,
    });
    await hub.until(() => events("ins_reject").find((e) => e.type === "reactor.gate.blocked"));
    decide("ins_reject", "apr_r", "rejected", { message: "Not during the freeze" });
    expect((await reply("ins_reject")).data.content).toBe(
      "Tool clock failed: A person rejected this call: Not during the freeze",
    );

    sendMail("ins_reject", "/tool clock");
    answer("ins_reject", await gateRequest("ins_reject", 1), { decision: "pending", approvalId: "apr_e" });
    await hub.until(() => events("ins_reject").filter((e) => e.type === "reactor.gate.blocked")[1]);
    decide("ins_reject", "apr_e", "expired");
    expect((await reply("ins_reject", 1)).data.content).toBe("Tool clock failed: Nobody approved this call in time");
    const cleared = events("ins_reject").filter((e) => e.type === "reactor.gate.cleared");
    expect(cleared.map((e) => e.data.reason)).toEqual(["resolved", "timeout"]);
  });

  it("an unknown tool is an error result, not a crash", async () => {
    await deploy("ins_unknown");
    // The echo model only calls offered tools, so an unknown name is just text to it.
    sendMail("ins_unknown", "/tool nonexistent {}");
    expect((await reply("ins_unknown")).data.content).toBe("Echo: /tool nonexistent {}");
    expect(hub.frames("ins_unknown").some((f) => f.type === "gate.request")).toBe(false);
  });

  it("an abort while waiting for approval ends the turn at once, without running the tool or replying", async () => {
    await deploy("ins_abort");
    sendMail("ins_abort", "/tool clock");
    answer("ins_abort", await gateRequest("ins_abort"), { decision: "pending", approvalId: "apr_a", expiresAt: null });
    await hub.until(() => events("ins_abort").find((e) => e.type === "reactor.gate.blocked"));
    hub.sendInstance("ins_abort", { type: "session.abort", requestId: "req_abort", reason: "admin_kill" });
    await hub.waitFor("ins_abort", (f) => f.type === "session.ack" && f.requestId === "req_abort");
    const types = events("ins_abort").map((e) => e.type);
    expect(types.slice(-2)).toEqual(["inference.error", "reactor.done"]);
    expect(types).not.toContain("tool.done");
    expect(types).not.toContain("connector.reply");
    // A late decision changes nothing.
    decide("ins_abort", "apr_a", "approved");
    await new Promise((r) => setTimeout(r, 50));
    expect(events("ins_abort").map((e) => e.type)).toEqual(types);
  });
});

describe("the hub_api tool", () => {
  it("calls the API with the instance's own token; a 202 waits for the approval, then the same request is resent", async () => {
    let calls = 0;
    hub.api = (request) => {
      calls += 1;
      if (calls === 1) {
        return {
          status: 202,
          body: { approval: { id: "apr_api", status: "pending", expiresAt: null }, retry: "Send it again" },
        };
      }
      return { status: 201, body: { id: "txn_1", amount: JSON.parse(request.body).amount } };
    };
    await deploy("ins_api");
    sendMail(
      "ins_api",
      '/tool hub_api {"method":"POST","path":"/api/tenants/tnt_test/wallets/wlt_1/transactions","body":{"direction":"outbound","amount":"20"}}',
    );
    await hub.until(() => events("ins_api").find((e) => e.type === "reactor.gate.blocked"));
    // Not gated by the sidecar: the API authorizes it.
    expect(hub.frames("ins_api").some((f) => f.type === "gate.request")).toBe(false);
    expect(hub.apiRequests).toHaveLength(1);
    decide("ins_api", "apr_api", "approved");
    expect((await reply("ins_api")).data.content).toBe('Tool hub_api returned: HTTP 201 {"id":"txn_1","amount":"20"}');
    expect(hub.apiRequests).toHaveLength(2);
    const [first, second] = hub.apiRequests;
    expect(first).toEqual({
      method: "POST",
      path: "/api/tenants/tnt_test/wallets/wlt_1/transactions",
      authorization: "Bearer ahi_token_of_ins_api",
      body: '{"direction":"outbound","amount":"20"}',
    });
    expect(second).toEqual(first);
  });

  it("a rejected request, an error status and a bad path come back as error results", async () => {
    // The hub answers the retry sent after the rejection with 403, as it does.
    let posts = 0;
    hub.api = (request) =>
      request.method === "DELETE"
        ? { status: 403, body: { error: { code: "forbidden" } } }
        : posts++ === 0
          ? { status: 202, body: { approval: { id: "apr_no", status: "pending", expiresAt: null } } }
          : { status: 403, body: { error: { code: "approval_rejected" } } };
    await deploy("ins_api_no");
    sendMail("ins_api_no", '/tool hub_api {"method":"POST","path":"/api/x","body":{}}');
    await hub.until(() => events("ins_api_no").find((e) => e.type === "reactor.gate.blocked"));
    decide("ins_api_no", "apr_no", "rejected", { message: "Ask finance" });
    expect((await reply("ins_api_no")).data.content).toBe(
      "Tool hub_api failed: A person rejected this request: Ask finance",
    );

    sendMail("ins_api_no", '/tool hub_api {"method":"DELETE","path":"/api/y"}');
    expect((await reply("ins_api_no", 1)).data.content).toBe(
      'Tool hub_api failed: HTTP 403 {"error":{"code":"forbidden"}}',
    );
    sendMail("ins_api_no", '/tool hub_api {"path":"https://example.com/api/"}');
    expect((await reply("ins_api_no", 2)).data.content).toBe("Tool hub_api failed: path must start with /api/");
    sendMail("ins_api_no", '/tool hub_api {"path":"//example.com/api/"}');
    expect((await reply("ins_api_no", 3)).data.content).toBe("Tool hub_api failed: path must start with /api/");
    expect(hub.apiRequests.map((r) => r.method)).toEqual(["POST", "POST", "DELETE"]);
  });
});
