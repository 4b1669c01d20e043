/**
 * Idempotency-Key on POST and PATCH: a retried request runs once and its answer is replayed byte for byte;
 * a reused key with another request, a bad key and a key still in flight are refused; keys are per
 * caller and tenant, and expire.
 */
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "../../src/db/client";
import {
  claimIdempotencyKey,
  deleteExpiredIdempotencyKeys,
  IDEMPOTENCY_STALE_CLAIM_MS,
  IDEMPOTENCY_TTL_MS,
} from "../../src/db/idempotency";
import { idempotencyKey } from "../../src/db/schema";
import { isReplayable } from "../../src/http/middleware/idempotency";
import { addMember, api, createTenant, expectError, type TestTenant, unique } from "./support/api";

const db = getDb(env);
const wallets = (tenantId: string) => `/api/tenants/${tenantId}/wallets`;
const walletBody = { name: "Ops", backendType: "fiat", currency: "EUR" };

/** The raw answer: the body as text, to compare replays byte for byte. */
async function send(path: string, token: string, key: string | null, body: unknown, method = "POST") {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  if (key !== null) headers["idempotency-key"] = key;
  const res = await exports.default.fetch(
    new Request(`http://hub.test${path}`, { method, headers, body: JSON.stringify(body) }),
  );
  return { status: res.status, text: await res.text(), headers: res.headers };
}

async function walletCount(t: TestTenant): Promise<number> {
  return (await api(wallets(t.id), { token: t.owner.token })).body.data.length;
}

describe("Idempotency-Key", () => {
  it("runs a retried POST once and replays its answer byte for byte", async () => {
    const t = await createTenant();
    const key = unique("key-");
    const first = await send(wallets(t.id), t.owner.token, key, walletBody);
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const again = await send(wallets(t.id), t.owner.token, key, walletBody);
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("x-request-id")).toBeTruthy();
    expect(await walletCount(t)).toBe(1);
  });

  it("lets exactly one of concurrent duplicates run", async () => {
    const t = await createTenant();
    const key = unique("key-");
    const answers = await Promise.all([1, 2, 3].map(() => send(wallets(t.id), t.owner.token, key, walletBody)));
    expect(answers.filter((a) => a.status === 201 && !a.headers.has("idempotent-replayed"))).toHaveLength(1);
    for (const a of answers) {
      expect([201, 409]).toContain(a.status);
      if (a.status === 409) expect(JSON.parse(a.text).error.code).toBe("idempotency_key_in_flight");
    }
    expect(await walletCount(t)).toBe(1);
  });

  it("refuses the same key with another body (422) and a malformed key (400)", async () => {
    const t = await createTenant();
    const key = unique("key-");
    expect((await send(wallets(t.id), t.owner.token, key, walletBody)).status).toBe(201);
    const other = await api(wallets(t.id), {
      token: t.owner.token,
      headers: { "idempotency-key": key },
      body: { ...walletBody, name: "Other" },
    });
    expectError(other, 422, "idempotency_key_reused");
    for (const bad of ["", "a".repeat(256), "with space", "tab\there"]) {
      const res = await api(wallets(t.id), {
        token: t.owner.token,
        headers: { "idempotency-key": bad },
        body: walletBody,
      });
      expectError(res, 400, "invalid_idempotency_key");
    }
    expect(await walletCount(t)).toBe(1);
  });

  it("changes nothing without a key, and keeps keys per caller", async () => {
    const t = await createTenant();
    expect((await send(wallets(t.id), t.owner.token, null, walletBody)).status).toBe(201);
    expect((await send(wallets(t.id), t.owner.token, null, walletBody)).status).toBe(201);
    expect(await walletCount(t)).toBe(2);
    const admin = await addMember(t, "admin");
    const key = unique("key-");
    const mine = await send(wallets(t.id), t.owner.token, key, walletBody);
    const theirs = await send(wallets(t.id), admin.token, key, walletBody);
    expect([mine.status, theirs.status]).toEqual([201, 201]);
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();
    expect(JSON.parse(theirs.text).id).not.toBe(JSON.parse(mine.text).id);
    expect(await walletCount(t)).toBe(4);
  });

  it("covers PATCH", async () => {
    const t = await createTenant();
    const wallet = JSON.parse((await send(wallets(t.id), t.owner.token, null, walletBody)).text);
    const key = unique("key-");
    const path = `${wallets(t.id)}/${wallet.id}`;
    const first = await send(path, t.owner.token, key, { name: "Renamed" }, "PATCH");
    expect(first.status).toBe(200);
    const again = await send(path, t.owner.token, key, { name: "Renamed" }, "PATCH");
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const log = await api(`/api/tenants/${t.id}/audit-log?action=wallet.update`, { token: t.owner.token });
    expect(log.body.data).toHaveLength(1);
  });

  it("replays a 4xx answer too", async () => {
    const t = await createTenant();
    const key = unique("key-");
    const invalid = { ...walletBody, backendType: "barter" };
    const first = await send(wallets(t.id), t.owner.token, key, invalid);
    expect(first.status).toBe(400);
    const again = await send(wallets(t.id), t.owner.token, key, invalid);
    expect(again.status).toBe(400);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  it("keeps no 5xx, 202 (pending approval) or 429 answer, so their retry runs", () => {
    expect([200, 201, 204, 400, 404, 409, 422].every(isReplayable)).toBe(true);
    expect([202, 429, 500, 503].some(isReplayable)).toBe(false);
  });

  it("ignores the header on anonymous requests", async () => {
    const t = await createTenant();
    const res = await api(wallets(t.id), { headers: { "idempotency-key": "bad key" }, body: walletBody });
    expectError(res, 401, "unauthorized");
  });

  it("frees a key once the cleanup pass removed it (24 hours)", async () => {
    const t = await createTenant();
    const key = unique("key-");
    const first = await send(wallets(t.id), t.owner.token, key, walletBody);
    expect(first.status).toBe(201);
    const dayAgo = new Date(Date.now() - IDEMPOTENCY_TTL_MS - 1000);
    await db.update(idempotencyKey).set({ createdAt: dayAgo }).where(eq(idempotencyKey.key, key));
    expect(await deleteExpiredIdempotencyKeys(db)).toBeGreaterThanOrEqual(1);
    expect(await db.select().from(idempotencyKey).where(eq(idempotencyKey.key, key))).toHaveLength(0);
    const again = await send(wallets(t.id), t.owner.token, key, walletBody);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(await walletCount(t)).toBe(2);
  });

  it("lets a claim whose request died be taken over after two minutes", async () => {
    const target = { scope: `test/${unique()}`, key: "k" };
    const hash = new Uint8Array(32);
    const now = Date.now();
    expect((await claimIdempotencyKey(db, target, hash, now)).kind).toBe("claimed");
    await expect(claimIdempotencyKey(db, target, hash, now + 1000)).rejects.toMatchObject({
      status: 409,
      code: "idempotency_key_in_flight",
    });
    const later = now + IDEMPOTENCY_STALE_CLAIM_MS + 1;
    expect(await claimIdempotencyKey(db, target, hash, later)).toEqual({ kind: "claimed", claimedAt: new Date(later) });
  });
});
