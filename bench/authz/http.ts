/**
 * End-to-end cost of authorization on the running hub (wrangler dev, local D1):
 *   - an authorized GET, repeated by one caller (the check of its session, tenant, principal and grants
 *     carried in the same D1 batch as the route's listing: one round trip, held by
 *     test/workers/authz-query-count.test.ts and printed from the response's `Server-Timing`; two for a
 *     caller's first request) against GET /status (no auth, no D1), interleaved, three rounds, medians;
 *   - sign-up and sign-in latency, which is dominated by the password hash (scrypt N=16384, r=16).
 *
 * Run: npm run bench:authz:http   (loopback only; starts its own hub on a free port with fresh state)
 */
import { startFreshHub } from "../../scripts/hub.mjs";

const ROUNDS = 3;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function timed(fn: () => Promise<Response>): Promise<number> {
  const t0 = performance.now();
  const res = await fn();
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t0;
}

async function main() {
  const hub = await startFreshHub({ prefix: "agent-hub-bench-" });
  try {
    const url = hub.url;
    const post = (path: string, body: unknown, token?: string) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });

    // Password hashing: sign-ups and sign-ins, sequential.
    const signUps: number[] = [];
    const signIns: number[] = [];
    const password = "bench password 123";
    const emails: string[] = [];
    for (let i = 0; i < 10; i++) {
      const email = `bench-${i}-${Date.now()}@example.test`;
      emails.push(email);
      signUps.push(await timed(() => post("/api/auth/sign-up/email", { name: "Bench", email, password })));
    }
    let token = "";
    for (const email of emails) {
      const t0 = performance.now();
      const res = await post("/api/auth/sign-in/email", { email, password });
      await res.arrayBuffer();
      signIns.push(performance.now() - t0);
      token = res.headers.get("set-auth-token") ?? token;
    }
    const tenant = (await (
      await post("/api/tenants", { name: "Bench", slug: `bench-${Date.now()}` }, token)
    ).json()) as {
      id: string;
    };
    const authorized = () =>
      fetch(`${url}/api/tenants/${tenant.id}/roles`, { headers: { authorization: `Bearer ${token}` } });
    const status = () => fetch(`${url}/status`);

    for (let i = 0; i < 50; i++) {
      await timed(authorized);
      await timed(status);
    }
    const rounds: { status: number[]; authorized: number[] }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const s: number[] = [];
      const a: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        // Interleaved so both sides see the same machine noise.
        s.push(await timed(status));
        a.push(await timed(authorized));
      }
      s.sort((x, y) => x - y);
      a.sort((x, y) => x - y);
      rounds.push({ status: s, authorized: a });
    }

    const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
    const stat = (pick: (r: (typeof rounds)[number]) => number[], p: number) =>
      median(rounds.map((r) => percentile(pick(r), p)));
    console.log(`\nAuthorized GET vs /status — ${ROUNDS} interleaved rounds of ${REQUESTS} requests, medians`);
    console.log("| request | p50 | p99 |");
    console.log("|---|---|---|");
    console.log(`| GET /status | ${fmt(stat((r) => r.status, 50))} | ${fmt(stat((r) => r.status, 99))} |`);
    console.log(
      `| GET /api/tenants/:id/roles (bearer) | ${fmt(stat((r) => r.authorized, 50))} | ${fmt(stat((r) => r.authorized, 99))} |`,
    );
    const serverTiming = (await authorized()).headers.get("server-timing") ?? "";
    const d1 = /d1;dur=[\d.]+;desc="([^"]+)"/.exec(serverTiming)?.[1] ?? "not reported";
    console.log(`D1 per authorized request (its Server-Timing): ${d1}`);
    const overhead = stat((r) => r.authorized, 50) - stat((r) => r.status, 50);
    console.log(
      `Authorization + query overhead at p50: ${fmt(overhead)} (ratio ${(stat((r) => r.authorized, 50) / stat((r) => r.status, 50)).toFixed(2)}x)`,
    );
    const sortedUp = [...signUps].sort((x, y) => x - y);
    const sortedIn = [...signIns].sort((x, y) => x - y);
    console.log("\nPassword hashing (scrypt N=16384 r=16 p=1 through node:crypto in workerd), 10 each:");
    console.log(`  sign-up p50 ${fmt(percentile(sortedUp, 50))}, max ${fmt(percentile(sortedUp, 100))}`);
    console.log(`  sign-in p50 ${fmt(percentile(sortedIn, 50))}, max ${fmt(percentile(sortedIn, 100))}`);
  } finally {
    await hub.stop();
  }
}

await main();
