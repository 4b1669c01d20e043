/**
 * Wallets and their ledger. Balances are exact decimal strings (`lib/decimal`); every balance change is a
 * compare-and-set batched with its transaction row, so the two land together or not at all, and a debit
 * never takes a balance below zero, however many run at once.
 */
import { and, eq, gte, lt, ne, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PageQuery, paginate } from "../db/pagination";
import { agent, transaction, type transactionDirections, type transactionStatuses, wallet } from "../db/schema";
import { ApiError, badRequest, notFound } from "../errors";
import { addDecimal, fromUnits, subDecimal, toUnits, tryToUnits } from "../lib/decimal";
import { newId } from "../lib/ids";

export type WalletRow = typeof wallet.$inferSelect;
export type TransactionRow = typeof transaction.$inferSelect;
type Backend = WalletRow["backendType"];
type Direction = (typeof transactionDirections)[number];
type Status = (typeof transactionStatuses)[number];

/** Error code of a refused debit; metering matches on it (`isInsufficientFunds`). */
export const INSUFFICIENT_FUNDS = "insufficient_funds";

export function isInsufficientFunds(err: unknown): err is ApiError {
  return err instanceof ApiError && err.code === INSUFFICIENT_FUNDS;
}

/** Compare-and-set attempts before giving up on a wallet under heavy contention. */
const MAX_ATTEMPTS = 64;

export async function findWallet(db: Db, tenantId: string, walletId: string): Promise<WalletRow> {
  const [row] = await db
    .select()
    .from(wallet)
    .where(and(eq(wallet.id, walletId), eq(wallet.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Wallet not found");
  return row;
}

export function listWallets(db: Db, tenantId: string, page: PageQuery) {
  return paginate(
    page,
    { time: wallet.createdAt, id: wallet.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(wallet)
        .where(and(eq(wallet.tenantId, tenantId), keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** The wallet a launch charges when it names none, or null when the tenant has no default wallet. */
export async function getDefaultWallet(db: Db, tenantId: string): Promise<WalletRow | null> {
  const [row] = await db
    .select()
    .from(wallet)
    .where(and(eq(wallet.tenantId, tenantId), eq(wallet.isDefault, true)))
    .limit(1);
  return row ?? null;
}

/** Statements that make `walletId` the tenant's only default wallet (run them in one batch). */
function becomeDefault(db: Db, tenantId: string, walletId: string) {
  return [
    db
      .update(wallet)
      .set({ isDefault: false })
      .where(and(eq(wallet.tenantId, tenantId), eq(wallet.isDefault, true), ne(wallet.id, walletId))),
    db.update(wallet).set({ isDefault: true, updatedAt: new Date() }).where(eq(wallet.id, walletId)),
  ] as const;
}

/**
 * A new wallet with a zero balance. `isDefault: true` makes it the tenant's default wallet; without the
 * field, the tenant's first wallet becomes its default.
 */
export async function createWallet(
  db: Db,
  tenantId: string,
  input: {
    name: string;
    backendType: Backend;
    currency: string;
    config?: Record<string, unknown> | null | undefined;
    isDefault?: boolean | undefined;
  },
): Promise<WalletRow> {
  const id = newId("wallet");
  const insert = db.insert(wallet).values({
    id,
    tenantId,
    name: input.name,
    backendType: input.backendType,
    currency: input.currency,
    balance: "0",
    config: input.config ?? null,
    isDefault: false,
  });
  if (input.isDefault === true) await db.batch([insert, ...becomeDefault(db, tenantId, id)]);
  else await insert;
  if (input.isDefault === undefined) {
    // Only while no wallet is the default; the unique index settles two first wallets created at once.
    await db
      .update(wallet)
      .set({ isDefault: true })
      .where(
        and(
          eq(wallet.id, id),
          sql`not exists (select 1 from ${wallet} w where w.tenant_id = ${tenantId} and w.is_default = 1)`,
        ),
      )
      .catch((err: unknown) => {
        if (!/UNIQUE constraint failed/.test(String((err as Error)?.message))) throw err;
      });
  }
  return findWallet(db, tenantId, id);
}

export async function updateWallet(
  db: Db,
  tenantId: string,
  walletId: string,
  patch: {
    name?: string | undefined;
    config?: Record<string, unknown> | null | undefined;
    isDefault?: boolean | undefined;
  },
): Promise<WalletRow> {
  await findWallet(db, tenantId, walletId);
  if (patch.isDefault === true) await db.batch(becomeDefault(db, tenantId, walletId));
  // Never touches `balance`: only credits and debits do, through compare-and-set.
  const values: Partial<typeof wallet.$inferInsert> = { updatedAt: new Date() };
  if (patch.name !== undefined) values.name = patch.name;
  if (patch.config !== undefined) values.config = patch.config;
  if (patch.isDefault === false) values.isDefault = false;
  const [row] = await db
    .update(wallet)
    .set(values)
    .where(and(eq(wallet.id, walletId), eq(wallet.tenantId, tenantId)))
    .returning();
  if (!row) throw notFound("Wallet not found");
  return row;
}

export async function deleteWallet(db: Db, tenantId: string, walletId: string): Promise<void> {
  const deleted = await db
    .delete(wallet)
    .where(and(eq(wallet.id, walletId), eq(wallet.tenantId, tenantId)))
    .returning({ id: wallet.id });
  if (deleted.length === 0) throw notFound("Wallet not found");
}

export type TransactionFilter = {
  direction?: Direction | undefined;
  status?: Status | undefined;
  agentId?: string | undefined;
  requestId?: string | undefined;
  /** Inclusive. */
  startTime?: Date | undefined;
  /** Exclusive. */
  endTime?: Date | undefined;
};

export async function listTransactions(
  db: Db,
  tenantId: string,
  walletId: string,
  filter: TransactionFilter,
  page: PageQuery,
) {
  await findWallet(db, tenantId, walletId);
  const conditions: (SQL | undefined)[] = [eq(transaction.walletId, walletId)];
  if (filter.direction) conditions.push(eq(transaction.direction, filter.direction));
  if (filter.status) conditions.push(eq(transaction.status, filter.status));
  if (filter.agentId) conditions.push(eq(transaction.agentId, filter.agentId));
  if (filter.requestId) conditions.push(eq(transaction.requestId, filter.requestId));
  if (filter.startTime) conditions.push(gte(transaction.createdAt, filter.startTime));
  if (filter.endTime) conditions.push(lt(transaction.createdAt, filter.endTime));
  return paginate(
    page,
    { time: transaction.createdAt, id: transaction.id },
    (keyset, orderBy, limit) =>
      db
        .select()
        .from(transaction)
        .where(and(...conditions, keyset))
        .orderBy(...orderBy)
        .limit(limit),
    (row) => ({ t: row.createdAt.getTime(), id: row.id }),
  );
}

/** Who and what a balance change is about; stored on its transaction row. */
export type TransactionMeta = {
  /** What was paid for (for metering: the instance, turn, model and usage). */
  metadata?: Record<string, unknown> | null | undefined;
  agentId?: string | null | undefined;
  recipientId?: string | null | undefined;
  senderId?: string | null | undefined;
  requestId?: string | null | undefined;
  /** When given, must be the wallet's currency (no conversion happens here). */
  currency?: string | undefined;
};

/** `replayed`: the request id was already used for this same change, which is returned as it was. */
export type BalanceChange = { wallet: WalletRow; transaction: TransactionRow; replayed: boolean };

/** Adds `amount` (a positive decimal string) to the wallet and records a completed inbound transaction. */
export function creditWallet(db: Db, walletId: string, amount: string, meta: TransactionMeta = {}) {
  return changeBalance(db, walletId, "inbound", amount, meta);
}

/**
 * Takes `amount` (a positive decimal string) from the wallet and records a completed outbound transaction.
 * Refused with 409 `insufficient_funds` (nothing written) when the balance would go below zero.
 */
export function debitWallet(db: Db, walletId: string, amount: string, meta: TransactionMeta = {}) {
  return changeBalance(db, walletId, "outbound", amount, meta);
}

async function changeBalance(
  db: Db,
  walletId: string,
  direction: Direction,
  amount: string,
  meta: TransactionMeta,
): Promise<BalanceChange> {
  const units = tryToUnits(amount);
  if (units === null || units <= 0n) throw badRequest("The amount must be a positive decimal string", "invalid_amount");
  const canonical = fromUnits(units);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const [current] = await db.select().from(wallet).where(eq(wallet.id, walletId)).limit(1);
    if (!current) throw notFound("Wallet not found");
    if (meta.requestId) {
      const earlier = await replayOf(db, walletId, meta.requestId, direction, canonical);
      if (earlier) return { wallet: current, transaction: earlier, replayed: true };
    }
    if (meta.currency !== undefined && meta.currency !== current.currency) {
      throw badRequest(`The wallet holds ${current.currency}, not ${meta.currency}`, "currency_mismatch");
    }
    const next =
      direction === "inbound" ? addDecimal(current.balance, canonical) : subDecimal(current.balance, canonical);
    if (toUnits(next) < 0n) {
      throw new ApiError(
        409,
        INSUFFICIENT_FUNDS,
        `Insufficient funds: the balance is ${current.balance} ${current.currency}, the debit ${canonical}`,
        { balance: current.balance, amount: canonical, currency: current.currency },
      );
    }
    const id = newId("transaction");
    const now = new Date();
    // Both statements are conditioned on the balance we read. A batch runs as one transaction, so either
    // the balance is still `current.balance` and both land, or another change won and neither does.
    const unchanged = and(eq(wallet.id, walletId), eq(wallet.balance, current.balance));
    const written = await db
      .batch([
        db
          .insert(transaction)
          .select((qb) =>
            qb
              .select({
                id: sql<string>`${id}`.as("id"),
                walletId: wallet.id,
                agentId: sql<string | null>`${meta.agentId ?? null}`.as("agent_id"),
                direction: sql<Direction>`${direction}`.as("direction"),
                amount: sql<string>`${canonical}`.as("amount"),
                currency: wallet.currency,
                recipientId: sql<string | null>`${meta.recipientId ?? null}`.as("recipient_id"),
                senderId: sql<string | null>`${meta.senderId ?? null}`.as("sender_id"),
                requestId: sql<string | null>`${meta.requestId ?? null}`.as("request_id"),
                status: sql<Status>`'completed'`.as("status"),
                metadata: sql<string | null>`${meta.metadata ? JSON.stringify(meta.metadata) : null}`.as("metadata"),
                createdAt: sql<number>`${now.getTime()}`.as("created_at"),
              })
              .from(wallet)
              .where(unchanged),
          )
          .returning(),
        db.update(wallet).set({ balance: next, updatedAt: now }).where(unchanged).returning(),
      ])
      .catch((err: unknown) => {
        // The same request id landed concurrently: the next attempt finds it and replays it.
        if (meta.requestId && /UNIQUE constraint failed/.test(String((err as Error)?.message))) return null;
        throw err;
      });
    const row = written?.[0][0];
    const after = written?.[1][0];
    if (row && after) return { wallet: after, transaction: row, replayed: false };
    // Lost the race: back off a little (jittered) and re-read.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * Math.min(attempt + 1, 8)));
  }
  throw new ApiError(503, "wallet_busy", "The wallet is changing too fast; retry the request");
}

/**
 * The transaction an earlier request with this id recorded on the wallet, when it asked for the same change;
 * 409 `idempotency_conflict` when the id was used for a different one.
 */
async function replayOf(
  db: Db,
  walletId: string,
  requestId: string,
  direction: Direction,
  amount: string,
): Promise<TransactionRow | null> {
  const [earlier] = await db
    .select()
    .from(transaction)
    .where(and(eq(transaction.walletId, walletId), eq(transaction.requestId, requestId)))
    .limit(1);
  if (!earlier) return null;
  if (earlier.direction !== direction || earlier.amount !== amount) {
    throw new ApiError(
      409,
      "idempotency_conflict",
      `requestId "${requestId}" was already used on this wallet for a different transaction`,
      { transactionId: earlier.id },
    );
  }
  return earlier;
}

/** What the wallet paid out since 00:00 UTC today: the spend that `max_spend_per_day` and
 * `require_approval_above` compare with. */
export async function walletSpentToday(db: Db, walletId: string, now = Date.now()): Promise<string> {
  const midnight = new Date(now);
  midnight.setUTCHours(0, 0, 0, 0);
  const rows = await db
    .select({ amount: transaction.amount })
    .from(transaction)
    .where(
      and(
        eq(transaction.walletId, walletId),
        eq(transaction.direction, "outbound"),
        eq(transaction.status, "completed"),
        gte(transaction.createdAt, midnight),
      ),
    );
  let spent = 0n;
  for (const row of rows) spent += toUnits(row.amount);
  return fromUnits(spent);
}

/** Checks that an agent definition belongs to the tenant before it is named on a transaction. */
export async function assertAgentInTenant(db: Db, tenantId: string, agentId: string): Promise<void> {
  const [row] = await db
    .select({ id: agent.id })
    .from(agent)
    .where(and(eq(agent.id, agentId), eq(agent.tenantId, tenantId)))
    .limit(1);
  if (!row) throw notFound("Agent not found in this tenant");
}
