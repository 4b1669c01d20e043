/**
 * Metering: each model call's usage, settled once when the call ends (docs/sidecar-protocol.md, "Usage"),
 * is priced at the model's catalog price at launch and debited from the instance's wallet. The debit is
 * keyed by the call's turn, so a replayed frame or a retried write finds its transaction and charges
 * nothing more; the turn records the same amount as its cost. A debit the wallet cannot cover is refused
 * whole (a balance never goes below zero) and reported as exhausted.
 */
import { eq } from "drizzle-orm";
import { usageCost } from "../catalog/pricing";
import { debitWallet, isInsufficientFunds } from "../catalog/wallets";
import type { Db } from "../db/client";
import { inferenceTurn } from "../db/schema";
import type { SettledUsage } from "./collector";
import type { InstanceSetup } from "./instance-state";

export type Charge =
  | { outcome: "free" }
  | { outcome: "charged" | "replayed"; amount: string; transactionId: string }
  | { outcome: "exhausted"; amount: string; balance: string; currency: string };

/** The price of the source the sidecar named, if it is one of the instance's, else the default source's. */
function priceOf(setup: InstanceSetup, source: string | null) {
  const pricing = setup.pricing ?? {};
  if (source !== null && source in pricing) return pricing[source] ?? null;
  return pricing[setup.config.defaultSource] ?? null;
}

export async function chargeModelCall(db: Db, setup: InstanceSetup, settled: SettledUsage): Promise<Charge> {
  const amount = usageCost(priceOf(setup, settled.source), settled.usage);
  if (amount === "0" || !setup.walletId) return { outcome: "free" };
  try {
    const change = await debitWallet(db, setup.walletId, amount, {
      requestId: `model-call:${settled.turnId}`,
      agentId: setup.config.agentId,
      metadata: {
        kind: "model_call",
        instanceId: setup.instanceId,
        turnId: settled.turnId,
        model: settled.model,
        source: settled.source ?? setup.config.defaultSource,
        usage: settled.usage,
      },
    });
    await db.update(inferenceTurn).set({ cost: amount }).where(eq(inferenceTurn.id, settled.turnId));
    return { outcome: change.replayed ? "replayed" : "charged", amount, transactionId: change.transaction.id };
  } catch (err) {
    if (!isInsufficientFunds(err)) throw err;
    const details = (err.details ?? {}) as { balance?: string; currency?: string };
    return { outcome: "exhausted", amount, balance: details.balance ?? "0", currency: details.currency ?? "" };
  }
}
