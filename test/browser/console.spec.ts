/**
 * An operator's first session in the console, in a real Chromium against the real hub and reference
 * sidecar: sign up, create a tenant, launch the demo agent, talk to it and watch the reply stream in,
 * lose the network and get every event back, approve what the agent asks, and see the turn's cost.
 */
import { expect, type Page, test } from "@playwright/test";
import { type Hub, runDemoRuntime, screenshot, signIn } from "./support";

test.describe.configure({ mode: "serial" });

let page: Page;
let hub: Hub;
let tenantId: string;
let runtime: Awaited<ReturnType<typeof runDemoRuntime>> | undefined;
let instanceId: string;

const email = `operator-${Date.now().toString(36)}@example.test`;
const password = "correct horse battery";

test.beforeAll(async ({ browser }) => {
  page = await (await browser.newContext()).newPage();
});

test.afterAll(async () => {
  await runtime?.stop();
  await page?.context().close();
});

/** The ids of the events the live stream shows, in the order shown. */
async function streamIds(): Promise<number[]> {
  const ids = await liveStream()
    .locator("[data-event-id]")
    .evaluateAll((els) => els.map((el) => Number(el.getAttribute("data-event-id"))));
  return ids;
}

const liveStream = () => page.getByRole("region", { name: "Live stream", exact: true });

test("sign up and create a tenant", async ({ baseURL }) => {
  await page.goto("/console/");
  await expect(page).toHaveURL(/\/console\/sign-in$/);
  await screenshot(page, "sign-in");
  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByLabel("Name").fill("Olga Operator");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("heading", { name: "Your tenants" })).toBeVisible();
  await expect(page.getByText("You belong to no tenant yet")).toBeVisible();
  await screenshot(page, "tenants-empty");

  // A slug the API would refuse is caught before it is sent.
  await page.getByLabel("Tenant name").fill("Browser Co");
  await page.getByLabel("Slug").fill("-bad-");
  await page.getByRole("button", { name: "Create tenant" }).click();
  expect(await page.getByLabel("Slug").evaluate((el) => (el as HTMLInputElement).validity.valid)).toBe(false);
  await expect(page).toHaveURL(/\/console\/?$/);
  await page.getByLabel("Slug").fill("");
  await page.getByRole("button", { name: "Create tenant" }).click();
  await expect(page).toHaveURL(/\/console\/t\/tnt_[0-9a-f]+\/agents$/);
  tenantId = /\/t\/(tnt_[0-9a-f]+)\//.exec(page.url())?.[1] as string;

  hub = await signIn(baseURL as string, email, password);
  const tenant = await hub.call("GET", `/api/tenants/${tenantId}`);
  expect(tenant).toMatchObject({ name: "Browser Co", slug: "browser-co" });
});

test("launch the demo agent", async () => {
  runtime = await runDemoRuntime(hub, tenantId);
  await page.getByRole("navigation", { name: "Tenant" }).getByRole("link", { name: "Instances" }).click();
  await page.getByRole("navigation", { name: "Tenant" }).getByRole("link", { name: "Agents" }).click();
  await page.getByRole("link", { name: "Echo" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Echo");
  // An edit is a new version, current at once.
  const edit = page.getByRole("region", { name: "Edit agent", exact: true });
  await edit.getByLabel("Description").fill("Replies with what you send it, from the console");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await expect(edit.getByRole("status")).toHaveText("Saved as version 2.");
  await expect(page.getByRole("region", { name: "Versions", exact: true })).toContainText("Version 2 (current)");
  await screenshot(page, "agent");
  await page.getByRole("button", { name: "Launch" }).click();
  await expect(page).toHaveURL(/\/instances\/ins_[0-9a-f]+$/);
  instanceId = /\/instances\/(ins_[0-9a-f]+)$/.exec(page.url())?.[1] as string;
  await expect(liveStream().getByRole("status")).toHaveText("Live");
});

test("send mail and see the reply stream in live", async () => {
  await page.getByLabel("Message").fill("hello from the console");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.getByLabel("Message")).toHaveValue("");
  await expect(liveStream()).toContainText("Echo: hello from the console");
  await expect(page.getByRole("region", { name: "Mail", exact: true })).toContainText("Echo: hello from the console");
  // The turn, with its model and cost, in the turns panel: no reload needed.
  const turns = page.getByRole("region", { name: "Turns", exact: true });
  await expect(turns).toContainText("completed");
  await expect(turns).toContainText("echo");
  await screenshot(page, "instance");
});

test("drop the network: the stream resumes without a gap", async () => {
  const context = page.context();
  const before = await streamIds();
  expect(before.length).toBeGreaterThan(0);
  await context.setOffline(true);
  await expect(liveStream().getByRole("status")).not.toHaveText("Live");
  // While the browser is offline the agent keeps talking: mail sent by another client.
  await hub.call("POST", `/api/tenants/${tenantId}/agents/instances/${instanceId}/mail`, {
    content: "said while you were away",
  });
  await expect
    .poll(async () => (await hub.call("GET", `/api/tenants/${tenantId}/agents/instances/${instanceId}/turns`)).data)
    .toHaveLength(2);
  await context.setOffline(false);
  await expect(liveStream()).toContainText("Echo: said while you were away", { timeout: 30_000 });
  await expect(liveStream().getByRole("status")).toHaveText("Live");
  // Every event once, in order, none missing: each id is the one before it plus one.
  const ids = await streamIds();
  expect(ids.length).toBeGreaterThan(before.length);
  expect(ids).toEqual(ids.map((_, i) => (ids[0] as number) + i));
});

test("approve what the agent asks", async () => {
  const instance = await hub.call("GET", `/api/tenants/${tenantId}/agents/instances/${instanceId}`);
  await hub.call("POST", `/api/tenants/${tenantId}/grants`, {
    principalId: instance.principalId,
    resource: "tool:note",
    action: "invoke",
    effect: "ask",
  });
  await page.getByLabel("Message").fill('/tool note {"text":"from the console"}');
  await page.getByRole("button", { name: "Send" }).click();
  await page.getByRole("navigation", { name: "Tenant" }).getByRole("link", { name: "Approvals" }).click();
  const pending = page.getByRole("article").filter({ hasText: "tool:note" });
  await expect(pending).toBeVisible();
  await screenshot(page, "approvals");
  await pending.getByRole("button", { name: "Approve once" }).click();
  await expect(page.getByText("No approval waits for you.")).toBeVisible();

  await page.goBack();
  await expect(page.getByRole("region", { name: "Mail", exact: true })).toContainText(
    "Tool note returned: Noted (1): from the console",
  );
});

test("the turns' cost appears in the usage charts and the wallet", async () => {
  const turns = (await hub.call("GET", `/api/tenants/${tenantId}/agents/instances/${instanceId}/turns`)).data;
  const spent = turns.reduce((sum: number, t: { cost: string }) => sum + Number(t.cost), 0);
  expect(spent).toBeGreaterThan(0);
  await page.getByRole("navigation", { name: "Tenant" }).getByRole("link", { name: "Usage" }).click();
  await expect(page.getByRole("heading", { name: "Cost" })).toBeVisible();
  await expect
    .poll(async () => Number(((await page.getByTestId("total-cost").textContent()) ?? "").replace(/[^0-9.]/g, "")))
    .toBeCloseTo(spent, 9);
  await screenshot(page, "usage");

  // Each recent trace opens its spans: the turn and the model call inside it.
  const trace = turns[0].traceId as string;
  await page.getByRole("link", { name: trace }).first().click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText(trace);
  const spans = page.getByRole("region", { name: "Spans table", exact: true });
  await expect(spans.getByRole("rowheader", { name: /^turn/ }).first()).toBeVisible();
  await expect(spans.getByRole("rowheader", { name: /chat echo/ }).first()).toBeVisible();
  await screenshot(page, "trace");

  await page.getByRole("navigation", { name: "Tenant" }).getByRole("link", { name: "Wallets" }).click();
  await page.getByRole("link", { name: "Demo credits" }).click();
  await expect(page.getByRole("table")).toContainText("outbound");
  await screenshot(page, "wallet");
});

test("an agent moved to another provider's model needs that provider's credential", async () => {
  const provider = await hub.call("POST", `/api/tenants/${tenantId}/providers`, {
    name: "echo-two",
    plugin: "echo",
    metadata: { baseURL: "http://127.0.0.1/echo", models: [{ id: "echo-two", name: "Echo two (offline)" }] },
  });
  expect(provider.id).toBeTruthy();
  const agent = await hub.call("POST", `/api/tenants/${tenantId}/agents/definitions`, {
    name: "Switcher",
    systemPrompt: "Reply briefly.",
    modelConfig: { defaultModel: "echo", temperature: 0.2 },
    credentialRequirements: [{ providerName: "echo", source: "tenant" }],
  });
  await page.getByRole("navigation", { name: "Tenant" }).getByRole("link", { name: "Agents" }).click();
  await page.getByRole("link", { name: "Switcher" }).click();
  const edit = page.getByRole("region", { name: "Edit agent", exact: true });
  // The catalog, which says whose model it is, has the new provider's model.
  await expect(edit.locator('option[value="echo-two"]')).toHaveCount(1);
  await edit.getByLabel("Default model").fill("echo-two");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await expect(edit.getByRole("status")).toHaveText("Saved as version 2.");
  const saved = await hub.call("GET", `/api/tenants/${tenantId}/agents/definitions/${agent.id}`);
  expect(saved.modelConfig).toEqual({ defaultModel: "echo-two", temperature: 0.2 });
  expect(saved.credentialRequirements).toEqual([{ providerName: "echo-two", source: "tenant" }]);
  await expect(page.getByText("echo-two (tenant)")).toBeVisible();
});
