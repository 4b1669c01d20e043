/**
 * Every main screen of the console, with real data in it, passes axe with no serious or critical
 * violation and fits a phone's width (no sideways scrolling), and `/docs` renders from the hub alone.
 */
import AxeBuilder from "@axe-core/playwright";
import { expect, type Page, test } from "@playwright/test";
import { type Hub, runDemoRuntime, screenshot, signUpUser } from "./support";

test.describe.configure({ mode: "serial" });

let page: Page;
let hub: Hub;
let tenantId: string;
let runtime: Awaited<ReturnType<typeof runDemoRuntime>> | undefined;
let screens: [name: string, path: string, heading: RegExp][] = [];

test.beforeAll(async ({ browser, baseURL }) => {
  test.setTimeout(120_000);
  page = await (await browser.newContext()).newPage();
  const user = await signUpUser(page, baseURL as string, "Ada Auditor");
  hub = user.hub;
  tenantId = (await hub.call("POST", "/api/tenants", { name: "Axe Co", slug: `axe-${Date.now().toString(36)}` })).id;
  runtime = await runDemoRuntime(hub, tenantId);
  const t = `/api/tenants/${tenantId}`;
  const instance = await hub.call("POST", `${t}/agents/instances`, { agentId: runtime.agentId });
  await hub.call("POST", `${t}/grants`, {
    principalId: instance.principalId,
    resource: "tool:note",
    action: "invoke",
    effect: "ask",
  });
  await hub.call("POST", `${t}/agents/instances/${instance.id}/mail`, { content: "hello axe" });
  await hub.call("POST", `${t}/agents/instances/${instance.id}/mail`, { content: '/tool note {"text":"wait"}' });
  await expect.poll(async () => (await hub.call("GET", `${t}/approvals?status=pending`)).data.length).toBe(1);
  const wallet = (await hub.call("GET", `${t}/wallets`)).data[0];
  let traceId = "";
  await expect
    .poll(async () => {
      const turns = (await hub.call("GET", `${t}/agents/instances/${instance.id}/turns`)).data;
      traceId = turns.find((x: { status: string; traceId: string | null }) => x.status === "completed")?.traceId ?? "";
      return traceId;
    })
    .not.toBe("");
  const c = `/t/${tenantId}`;
  screens = [
    ["tenants", "/", /Your tenants/],
    ["agents", `${c}/agents`, /Agents/],
    ["agent", `${c}/agents/${runtime.agentId}`, /Echo/],
    ["instances", `${c}/instances`, /Instances/],
    ["instance", `${c}/instances/${instance.id}`, /./],
    ["approvals", `${c}/approvals`, /Approvals/],
    ["wallets", `${c}/wallets`, /Wallets/],
    ["wallet", `${c}/wallets/${wallet.id}`, /Demo credits/],
    ["usage", `${c}/usage`, /Usage/],
    ["trace", `${c}/traces/${traceId}`, /Trace/],
    ["sidecars", `${c}/sidecars`, /Sidecars/],
    ["members", `${c}/members`, /Members/],
    ["git-tokens", `${c}/git-tokens`, /Git tokens/],
  ];
});

test.afterAll(async () => {
  await runtime?.stop();
  await page?.context().close();
});

async function serious(page: Page) {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

for (const [width, height, label] of [
  [1280, 900, "desktop"],
  [390, 844, "phone"],
] as const) {
  test(`every main screen is accessible at ${label} width`, async () => {
    await page.setViewportSize({ width, height });
    for (const [name, path, heading] of screens) {
      await test.step(name, async () => {
        await page.goto(`/console${path}`);
        await expect(page.getByRole("heading", { level: 1 })).toHaveText(heading);
        // Loaded: no screen is measured while it still says it is loading.
        await expect(page.locator('[aria-busy="true"]')).toHaveCount(0);
        expect(await serious(page), `${name} at ${label} width`).toEqual([]);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `${name} scrolls sideways at ${label} width`).toBeLessThanOrEqual(0);
        await screenshot(page, `${label}-${name}`);
      });
    }
  });
}

test("the sign-in and sign-up screens are accessible", async ({ browser }) => {
  const anonymous = await (await browser.newContext()).newPage();
  for (const path of ["/sign-in", "/sign-up"]) {
    await anonymous.goto(`/console${path}`);
    await expect(anonymous.getByRole("heading", { level: 1 })).toBeVisible();
    expect(await serious(anonymous), path).toEqual([]);
  }
  await anonymous.context().close();
});

test("/docs renders the API reference from the hub alone", async ({ browser, baseURL }) => {
  const docs = await (await browser.newContext()).newPage();
  const origin = new URL(baseURL as string).origin;
  const elsewhere: string[] = [];
  await docs.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
    elsewhere.push(url);
    return route.abort();
  });
  await docs.goto("/docs");
  await expect(docs.getByText("Liveness check").first()).toBeVisible({ timeout: 30_000 });
  await screenshot(docs, "docs");
  expect(elsewhere).toEqual([]);
  await docs.context().close();
});
