import { createRoute, z } from "@hono/zod-openapi";
import {
  assertAgentInTenant,
  createWallet,
  creditWallet,
  debitWallet,
  deleteWallet,
  findWallet,
  listTransactions,
  listWallets,
  type TransactionRow,
  updateWallet,
  type WalletRow,
} from "../catalog/wallets";
import { getDb } from "../db/client";
import { mapPage } from "../db/pagination";
import { transactionDirections, transactionStatuses, walletBackends } from "../db/schema";
import { audit, fieldsOf } from "../http/audit";
import { iso } from "../http/format";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import {
  errors,
  jsonBody,
  jsonRequest,
  noContent,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";
import { PositiveDecimal } from "../lib/decimal-schema";

const Config = z.record(z.string(), z.unknown());

export const WalletSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    backendType: z.enum(walletBackends),
    currency: z.string(),
    balance: z.string().openapi({ description: "Exact decimal string", example: "42.5" }),
    config: Config.optional().openapi({ description: "Omitted when not set" }),
    isDefault: z.boolean().openapi({ description: "The wallet a launch charges when it names none" }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Wallet");

export const TransactionSchema = z
  .object({
    id: z.string(),
    walletId: z.string(),
    agentId: z.string().nullable(),
    direction: z.enum(transactionDirections),
    amount: z.string().openapi({ description: "Exact decimal string", example: "0.25" }),
    currency: z.string(),
    recipientId: z.string().nullable(),
    senderId: z.string().nullable(),
    requestId: z.string().nullable(),
    status: z.enum(transactionStatuses),
    metadata: z
      .record(z.string(), z.unknown())
      .nullable()
      .openapi({ description: "What was paid for: a model call's instanceId, turnId, model and usage" }),
    createdAt: Timestamp,
  })
  .openapi("Transaction");

function formatWallet(w: WalletRow) {
  return {
    id: w.id,
    tenantId: w.tenantId,
    name: w.name,
    backendType: w.backendType,
    currency: w.currency,
    balance: w.balance,
    ...(w.config ? { config: w.config } : {}),
    isDefault: w.isDefault,
    createdAt: iso(w.createdAt),
    updatedAt: iso(w.updatedAt),
  };
}

function formatTransaction(t: TransactionRow) {
  return {
    id: t.id,
    walletId: t.walletId,
    agentId: t.agentId,
    direction: t.direction,
    amount: t.amount,
    currency: t.currency,
    recipientId: t.recipientId,
    senderId: t.senderId,
    requestId: t.requestId,
    status: t.status,
    metadata: t.metadata ?? null,
    createdAt: iso(t.createdAt),
  };
}

const WalletName = z.string().trim().min(1).max(200).openapi({ example: "Inference budget" });
const Currency = z
  .string()
  .trim()
  .min(1)
  .max(16)
  .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '_' or '-'")
  .openapi({ example: "USD" });
const IsDefault = z.boolean().openapi({
  description: "Make this the tenant's default wallet (the one a launch charges when it names none)",
});
const CreateWalletSchema = z
  .object({
    name: WalletName,
    backendType: z.enum(walletBackends),
    currency: Currency,
    config: Config.optional(),
    isDefault: IsDefault.optional().openapi({ description: "Defaults to true for the tenant's first wallet" }),
  })
  .openapi("CreateWallet");
const UpdateWalletSchema = z
  .object({ name: WalletName.optional(), config: Config.nullable().optional(), isDefault: IsDefault.optional() })
  .openapi("UpdateWallet");
const Reference = z.string().min(1).max(128);
const CreateTransactionSchema = z
  .object({
    direction: z.enum(transactionDirections).openapi({ description: "`inbound` credits, `outbound` debits" }),
    amount: PositiveDecimal,
    agentId: Reference.optional().openapi({ description: "An agent definition of this tenant" }),
    recipientId: Reference.optional(),
    senderId: Reference.optional(),
    requestId: Reference.optional(),
  })
  .openapi("CreateTransaction");
const IsoDateTime = z.iso.datetime({ offset: true }).openapi({ example: "2026-11-25T00:00:00.000Z" });
const TransactionQuery = PageQuerySchema.extend({
  direction: z.enum(transactionDirections).optional(),
  status: z.enum(transactionStatuses).optional(),
  agentId: Reference.optional(),
  requestId: Reference.optional(),
  startTime: IsoDateTime.optional().openapi({ description: "Created at or after (inclusive)" }),
  endTime: IsoDateTime.optional().openapi({ description: "Created before (exclusive)" }),
}).refine((q) => !q.startTime || !q.endTime || Date.parse(q.startTime) <= Date.parse(q.endTime), {
  message: "startTime must not be after endTime",
  path: ["startTime"],
});
const WalletParams = TenantParams.extend({ walletId: pathParam("walletId", "wlt_0123456789abcdef0123456789abcdef") });
/** A wallet's backend config may hold secrets: an audit entry only says that it changed. */
function walletChanges(body: { config?: unknown }) {
  const changes = fieldsOf(body, ["name", "backendType", "currency", "isDefault"]) ?? {};
  if (body.config !== undefined) changes.config = "changed";
  return Object.keys(changes).length > 0 ? changes : null;
}
const walletResource = idResource("wallet", "walletId");
const toDate = (value: string | undefined) => (value === undefined ? undefined : new Date(value));

export const walletRoutes = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/wallets",
      tags: ["Wallets"],
      summary: "List wallets",
      middleware: [requireGrant("wallet:*", "read")] as const,
      request: { params: TenantParams, query: PageQuerySchema },
      responses: {
        200: jsonBody(pageOf(WalletSchema, "WalletPage"), "A page of wallets"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) =>
      c.json(mapPage(await listWallets(getDb(c.env), c.get("tenant").id, c.req.valid("query")), formatWallet), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/wallets",
      tags: ["Wallets"],
      summary: "Create a wallet (balance 0)",
      description: "Needs `wallet:*` create.",
      middleware: [requireGrant("wallet:*", "create")] as const,
      request: { params: TenantParams, ...jsonRequest(CreateWalletSchema) },
      responses: { 201: jsonBody(WalletSchema, "The new wallet"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const row = await createWallet(getDb(c.env), c.get("tenant").id, body);
      await audit(c, "wallet.create", { type: "wallet", id: row.id }, walletChanges(body));
      return c.json(formatWallet(row), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/wallets/{walletId}",
      tags: ["Wallets"],
      summary: "Get a wallet and its balance",
      middleware: [requireGrant(walletResource, "read")] as const,
      request: { params: WalletParams },
      responses: { 200: jsonBody(WalletSchema, "The wallet"), ...errors(401, 403, 404) },
    }),
    async (c) =>
      c.json(formatWallet(await findWallet(getDb(c.env), c.get("tenant").id, c.req.valid("param").walletId)), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/api/tenants/{tenantId}/wallets/{walletId}",
      tags: ["Wallets"],
      summary: "Rename or reconfigure a wallet",
      description: "Needs `wallet:<id>` manage. The balance changes only through transactions.",
      middleware: [requireGrant(walletResource, "manage")] as const,
      request: { params: WalletParams, ...jsonRequest(UpdateWalletSchema) },
      responses: { 200: jsonBody(WalletSchema, "The updated wallet"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      const { walletId } = c.req.valid("param");
      const body = c.req.valid("json");
      const row = await updateWallet(getDb(c.env), c.get("tenant").id, walletId, body);
      await audit(c, "wallet.update", { type: "wallet", id: walletId }, walletChanges(body));
      return c.json(formatWallet(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/api/tenants/{tenantId}/wallets/{walletId}",
      tags: ["Wallets"],
      summary: "Delete a wallet and its transactions",
      description: "Needs `wallet:<id>` manage. Instances that used it are left without a wallet.",
      middleware: [requireGrant(walletResource, "manage")] as const,
      request: { params: WalletParams },
      responses: { ...noContent, ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { walletId } = c.req.valid("param");
      await deleteWallet(getDb(c.env), c.get("tenant").id, walletId);
      await audit(c, "wallet.delete", { type: "wallet", id: walletId });
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/wallets/{walletId}/transactions",
      tags: ["Wallets"],
      summary: "List a wallet's transactions",
      description: "Needs `wallet:<id>` read. Filters combine (AND); `startTime` is inclusive, `endTime` exclusive.",
      middleware: [requireGrant(walletResource, "read")] as const,
      request: { params: WalletParams, query: TransactionQuery },
      responses: {
        200: jsonBody(pageOf(TransactionSchema, "TransactionPage"), "A page of transactions"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { limit, cursor, startTime, endTime, ...filter } = c.req.valid("query");
      const page = await listTransactions(
        getDb(c.env),
        c.get("tenant").id,
        c.req.valid("param").walletId,
        { ...filter, startTime: toDate(startTime), endTime: toDate(endTime) },
        { limit, cursor },
      );
      return c.json(mapPage(page, formatTransaction), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/api/tenants/{tenantId}/wallets/{walletId}/transactions",
      tags: ["Wallets"],
      summary: "Credit or debit a wallet by hand",
      description:
        "Needs `wallet:<id>` manage. Records a completed transaction and changes the balance atomically. A debit " +
        "that would take the balance below zero is refused with 409 `insufficient_funds` and writes nothing. " +
        "A `requestId` makes the call idempotent per wallet: repeating it returns the recorded transaction with " +
        "200 and moves nothing; reusing it for a different direction or amount is 409 `idempotency_conflict`.",
      middleware: [requireGrant(walletResource, "manage")] as const,
      request: { params: WalletParams, ...jsonRequest(CreateTransactionSchema) },
      responses: {
        200: jsonBody(TransactionSchema, "The transaction this requestId already recorded (nothing changed)"),
        201: jsonBody(TransactionSchema, "The recorded transaction"),
        ...errors(400, 401, 403, 404, 409, 503),
      },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const { walletId } = c.req.valid("param");
      const { direction, amount, ...meta } = c.req.valid("json");
      await findWallet(db, tenantId, walletId);
      if (meta.agentId) await assertAgentInTenant(db, tenantId, meta.agentId);
      const change = direction === "inbound" ? creditWallet : debitWallet;
      const { transaction, replayed } = await change(db, walletId, amount, meta);
      if (!replayed) {
        const changes = {
          walletId,
          direction,
          amount,
          ...fieldsOf(meta, ["agentId", "recipientId", "senderId", "requestId"]),
        };
        await audit(c, "transaction.create", { type: "transaction", id: transaction.id }, changes);
      }
      return replayed ? c.json(formatTransaction(transaction), 200) : c.json(formatTransaction(transaction), 201);
    },
  );
