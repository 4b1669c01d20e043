/** A tenant's wallets (what model calls are charged to), one wallet's ledger, and crediting it by hand. */
import "./wallets.css";
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useParams } from "react-router";
import { api, type Page, tenantPath, withQuery } from "../api";
import { AMOUNT_PATTERN, formatDecimal, formatMoney, isPositiveDecimal } from "../decimal";
import type { Schema } from "../schemas";
import { tenantListKeys, useWallets } from "../tenant-lists";
import { useTenantId } from "../tenants";
import { Empty, ErrorNote, FormError, Loading, LoadMore, PageTitle, QueryView, ScrollTable, Time } from "../ui";

type Wallet = Schema<"Wallet">;
type Transaction = Schema<"Transaction">;
type BackendType = Wallet["backendType"];

/** The ledger changes by itself (every model call is a debit), so it and the balances are polled. */
const POLL_MS = 5000;

const walletsKey = tenantListKeys.wallets;
const walletKey = (tenantId: string, walletId: string) => [...walletsKey(tenantId), walletId] as const;

const backendLabels: Record<BackendType, string> = { credits: "Credits", fiat: "Fiat", crypto: "Crypto" };

export function WalletsPage() {
  const tenantId = useTenantId();
  const wallets = useWallets(tenantId);
  return (
    <>
      <PageTitle>Wallets</PageTitle>
      <p>Every running instance is charged to a wallet for its model calls: the one named at launch, or the default.</p>
      <QueryView
        query={wallets}
        label="Loading wallets"
        isEmpty={(page) => page.data.length === 0}
        empty="This tenant has no wallet yet. Create one below; the first becomes the default."
      >
        {(page) => <WalletTable tenantId={tenantId} wallets={page.data} />}
      </QueryView>
      <CreateWallet tenantId={tenantId} />
    </>
  );
}

function WalletTable({ tenantId, wallets }: { tenantId: string; wallets: Wallet[] }) {
  return (
    <ScrollTable label="Wallets">
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Currency</th>
            <th scope="col" className="num">
              Balance
            </th>
            <th scope="col">Default</th>
            <th scope="col">Backend</th>
          </tr>
        </thead>
        <tbody>
          {wallets.map((w) => (
            <tr key={w.id}>
              <th scope="row">
                <Link to={`/t/${tenantId}/wallets/${w.id}`}>{w.name}</Link>
              </th>
              <td>{w.currency}</td>
              <td className="num">{formatDecimal(w.balance, 2)}</td>
              <td>{w.isDefault ? "Default" : "—"}</td>
              <td>{backendLabels[w.backendType]}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollTable>
  );
}

function CreateWallet({ tenantId }: { tenantId: string }) {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [backendType, setBackendType] = useState<BackendType>("credits");
  const [currency, setCurrency] = useState("USD");
  const [isDefault, setIsDefault] = useState(false);
  const [created, setCreated] = useState<Wallet | null>(null);
  const create = useMutation({
    mutationFn: (body: Schema<"CreateWallet">) => api<Wallet>("POST", tenantPath(tenantId, "wallets"), body),
    onSuccess: async (wallet) => {
      setCreated(wallet);
      setName("");
      setIsDefault(false);
      await client.invalidateQueries({ queryKey: walletsKey(tenantId) });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setCreated(null);
    // `isDefault` is only sent when asked for: the API makes the tenant's first wallet the default itself.
    create.mutate({ name: name.trim(), backendType, currency: currency.trim(), ...(isDefault ? { isDefault } : {}) });
  };
  return (
    <section aria-labelledby="create-wallet">
      <h2 id="create-wallet">Create a wallet</h2>
      <form onSubmit={submit}>
        <div className="grid">
          <label>
            Wallet name
            <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Backend
            <select value={backendType} onChange={(e) => setBackendType(e.target.value as BackendType)}>
              {Object.entries(backendLabels).map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Currency
            <input
              required
              maxLength={16}
              pattern="[A-Za-z0-9_\-]+"
              aria-describedby="currency-hint"
              value={currency}
              onChange={(e) => setCurrency(e.target.value)}
            />
            <small id="currency-hint">A code such as USD; models priced in another currency cannot charge it.</small>
          </label>
        </div>
        <label>
          <input type="checkbox" checked={isDefault} onChange={(e) => setIsDefault(e.target.checked)} />
          Make it the default wallet
        </label>
        <FormError error={create.error} />
        <p role="status" aria-live="polite">
          {created && (
            <>
              Created <Link to={`/t/${tenantId}/wallets/${created.id}`}>{created.name}</Link>.
            </>
          )}
        </p>
        <button type="submit" aria-busy={create.isPending} disabled={create.isPending}>
          Create wallet
        </button>
      </form>
    </section>
  );
}

export function WalletPage() {
  const tenantId = useTenantId();
  const { walletId = "" } = useParams();
  const wallet = useQuery({
    queryKey: walletKey(tenantId, walletId),
    queryFn: () => api<Wallet>("GET", tenantPath(tenantId, `wallets/${encodeURIComponent(walletId)}`)),
    refetchInterval: POLL_MS,
  });
  return (
    <>
      <p>
        <Link to={`/t/${tenantId}/wallets`}>← Wallets</Link>
      </p>
      <QueryView query={wallet} label="Loading the wallet">
        {(w) => (
          <>
            <PageTitle actions={!w.isDefault && <MakeDefault tenantId={tenantId} wallet={w} />}>{w.name}</PageTitle>
            <WalletSummary wallet={w} />
            <AddCredits tenantId={tenantId} wallet={w} />
            <Ledger tenantId={tenantId} wallet={w} />
          </>
        )}
      </QueryView>
    </>
  );
}

function WalletSummary({ wallet }: { wallet: Wallet }) {
  return (
    <dl className="wallet-summary">
      <div>
        <dt>Balance</dt>
        <dd data-testid="wallet-balance">
          <strong>{formatMoney(wallet.balance, wallet.currency)}</strong>
        </dd>
      </div>
      <div>
        <dt>Backend</dt>
        <dd>{backendLabels[wallet.backendType]}</dd>
      </div>
      <div>
        <dt>Default</dt>
        <dd>{wallet.isDefault ? "Yes: launches that name no wallet are charged here" : "No"}</dd>
      </div>
      <div>
        <dt>Created</dt>
        <dd>
          <Time at={wallet.createdAt} />
        </dd>
      </div>
    </dl>
  );
}

function MakeDefault({ tenantId, wallet }: { tenantId: string; wallet: Wallet }) {
  const client = useQueryClient();
  const update = useMutation({
    mutationFn: () =>
      api<Wallet>("PATCH", tenantPath(tenantId, `wallets/${encodeURIComponent(wallet.id)}`), { isDefault: true }),
    // Another wallet stops being the default, so the whole list is stale.
    onSuccess: () => client.invalidateQueries({ queryKey: walletsKey(tenantId) }),
  });
  return (
    <div>
      <button
        type="button"
        className="secondary outline"
        aria-busy={update.isPending}
        disabled={update.isPending}
        onClick={() => update.mutate()}
      >
        Make default
      </button>
      <FormError error={update.error} />
    </div>
  );
}

/** A fresh idempotency key for one credit: a retry of the same submission reuses it and moves nothing twice. */
function newRequestId(): string {
  return `console-credit-${crypto.randomUUID()}`;
}

function AddCredits({ tenantId, wallet }: { tenantId: string; wallet: Wallet }) {
  const client = useQueryClient();
  const [amount, setAmount] = useState("");
  const [requestId, setRequestId] = useState(newRequestId);
  const [done, setDone] = useState<Transaction | null>(null);
  const credit = useMutation({
    mutationFn: (body: Schema<"CreateTransaction">) =>
      api<Transaction>("POST", tenantPath(tenantId, `wallets/${encodeURIComponent(wallet.id)}/transactions`), body),
    onSuccess: async (txn) => {
      setDone(txn);
      setAmount("");
      setRequestId(newRequestId());
      await client.invalidateQueries({ queryKey: walletsKey(tenantId) });
    },
  });
  const changeAmount = (value: string) => {
    setAmount(value);
    // The key stands for one amount: reusing it for another is a 409 `idempotency_conflict`.
    setRequestId(newRequestId());
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    credit.mutate({ direction: "inbound", amount: amount.trim(), requestId });
  };
  const invalid = amount !== "" && !isPositiveDecimal(amount.trim());
  return (
    <section aria-labelledby="add-credits">
      <h2 id="add-credits">Add credits</h2>
      <form onSubmit={submit} className="add-credits">
        <label>
          Amount ({wallet.currency})
          <input
            required
            inputMode="decimal"
            autoComplete="off"
            pattern={AMOUNT_PATTERN}
            placeholder="25.00"
            aria-invalid={invalid || undefined}
            aria-describedby="amount-hint"
            value={amount}
            onChange={(e) => changeAmount(e.target.value)}
          />
          <small id="amount-hint">A positive amount: digits, optionally a point and up to 18 decimals.</small>
        </label>
        <FormError error={credit.error} />
        <p role="status" aria-live="polite">
          {done && `Added ${formatMoney(done.amount, done.currency)}.`}
        </p>
        <button type="submit" aria-busy={credit.isPending} disabled={credit.isPending || invalid}>
          Add credits
        </button>
      </form>
    </section>
  );
}

function Ledger({ tenantId, wallet }: { tenantId: string; wallet: Wallet }) {
  const path = tenantPath(tenantId, `wallets/${encodeURIComponent(wallet.id)}/transactions`);
  const ledger = useInfiniteQuery({
    queryKey: [...walletKey(tenantId, wallet.id), "transactions"],
    queryFn: ({ pageParam }) => api<Page<Transaction>>("GET", withQuery(path, { limit: 25, cursor: pageParam })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    refetchInterval: POLL_MS,
  });
  return (
    <section aria-labelledby="ledger">
      <h2 id="ledger">Ledger</h2>
      {ledger.isPending ? (
        <Loading label="Loading the ledger" />
      ) : ledger.isError ? (
        <ErrorNote error={ledger.error} retry={() => ledger.refetch()} />
      ) : ledger.data.pages[0]?.data.length === 0 ? (
        <Empty>No transactions yet.</Empty>
      ) : (
        <>
          <ScrollTable label="Ledger">
            <table className="ledger">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Direction</th>
                  <th scope="col" className="num">
                    Amount
                  </th>
                  <th scope="col">Counterparty</th>
                  <th scope="col">Request / memo</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {ledger.data.pages
                  .flatMap((p) => p.data)
                  .map((t) => (
                    <LedgerRow key={t.id} txn={t} />
                  ))}
              </tbody>
            </table>
          </ScrollTable>
          <LoadMore query={ledger} />
        </>
      )}
    </section>
  );
}

function LedgerRow({ txn }: { txn: Transaction }) {
  const inbound = txn.direction === "inbound";
  return (
    <tr>
      <td>
        <Time at={txn.createdAt} />
      </td>
      {/* The word says it (as the API does); the sign and colour only repeat it. */}
      <td>{txn.direction}</td>
      <td className={`num ${inbound ? "credit" : "debit"}`}>
        {inbound ? "+" : "−"}
        {formatDecimal(txn.amount, 2)} {txn.currency}
      </td>
      <td>
        <Counterparty txn={txn} />
      </td>
      <td>
        <Memo txn={txn} />
      </td>
      <td>{txn.status}</td>
    </tr>
  );
}

function Counterparty({ txn }: { txn: Transaction }) {
  const who = txn.direction === "inbound" ? txn.senderId : txn.recipientId;
  if (who) return <code>{who}</code>;
  if (txn.agentId) return <code title="Agent">{txn.agentId}</code>;
  return <span>—</span>;
}

/** A model call's debit says which call; anything else shows its request id. */
function Memo({ txn }: { txn: Transaction }) {
  const meta = txn.metadata;
  if (meta && meta.kind === "model_call") {
    const model = typeof meta.model === "string" ? meta.model : "model";
    const turn = typeof meta.turnId === "string" ? meta.turnId : undefined;
    return (
      <span>
        Model call ({model}){turn && <small> · {turn}</small>}
      </span>
    );
  }
  return txn.requestId ? <code>{txn.requestId}</code> : <span>—</span>;
}
