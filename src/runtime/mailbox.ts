/**
 * Mail of one instance: building and signing the user's MIME, storing mail rows (D1, or R2 when large),
 * and the JMAP view. Used by the instance's Durable Object, which owns delivery and the event stream.
 */

import { and, desc, eq, inArray, isNotNull } from "drizzle-orm";
import { collectGrants } from "../authz/grant-store";
import { type Db, getDb } from "../db/client";
import { agent, agentInstance, agentSession, sessionMail } from "../db/schema";
import { base64ToBytes, bytesToBase64 } from "../lib/base64";
import { newId } from "../lib/ids";
import { buildUserMessage } from "../mail/build";
import { generateMailKey, mailSigner } from "../mail/keys";
import { parseMailToEmail } from "../mail/parse";
import { threadHeaders } from "../mail/threading";
import { secretBox } from "../secrets/encryption";
import type { ConnectorState, HarnessConfig, InferenceSource, WireGrantRule } from "./protocol";
import { resolveSources, toWireGrants } from "./sidecar-config";

/** Larger raw messages go to R2 and the row keeps the key. */
export const INLINE_MAIL_BYTES = 256 * 1024;

export type UserMailInput = {
  mailId: string;
  content: string;
  subject?: string | undefined;
  from: { name: string | null; email: string };
};

export type Email = ReturnType<typeof parseMailToEmail>;

export type InstanceMail = {
  id: string;
  raw: Uint8Array;
  email: Email & { id: string; direction: "inbound" | "outbound"; status: string; receivedAt: string };
};

type SetupLike = { config: HarnessConfig; tenantId: string; instanceId: string };

export function mailDomain(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1);
}

export class InstanceMailbox {
  constructor(
    private readonly env: Env,
    private readonly storage: DurableObjectStorage,
  ) {}

  /** The instance's signing key: made on first use, then kept (its public half is served). */
  private async key(): Promise<{ privateKeyArmored: string; publicKeyArmored: string }> {
    const existing = await this.storage.get<{ privateKeyArmored: string; publicKeyArmored: string }>("mailKey");
    if (existing) return existing;
    const setup = await this.storage.get<SetupLike>("setup");
    const made = await generateMailKey(setup?.config.agentAddress ?? "agent-hub instance");
    const key = { privateKeyArmored: made.privateKeyArmored, publicKeyArmored: made.publicKeyArmored };
    await this.storage.put("mailKey", key);
    return key;
  }

  async publicKeyArmored(): Promise<string> {
    return (await this.key()).publicKeyArmored;
  }

  async recordPublicKey(db: Db, instanceId: string, publicKey: string): Promise<void> {
    await db.update(agentInstance).set({ publicKey, updatedAt: new Date() }).where(eq(agentInstance.id, instanceId));
  }

  async markRunning(db: Db, instanceId: string): Promise<void> {
    await db
      .update(agentInstance)
      .set({ status: "running", updatedAt: new Date() })
      .where(and(eq(agentInstance.id, instanceId), inArray(agentInstance.status, ["deployed", "updating"])));
  }

  /** Grants as they are now, and the sources re-resolved (fail-open: null keeps the sidecar's). */
  async currentGrantsAndSources(
    db: Db,
    setup: SetupLike,
  ): Promise<{ grants: WireGrantRule[]; sources: InferenceSource[] | null }> {
    const grants = toWireGrants(await collectGrants(db, setup.tenantId, setup.config.principalId));
    let sources: InferenceSource[] | null = null;
    try {
      const [definition, session] = await Promise.all([
        db.query.agent.findFirst({ where: eq(agent.id, setup.config.agentId) }),
        db.query.agentSession.findFirst({ where: eq(agentSession.id, setup.config.sessionId) }),
      ]);
      if (definition && session) {
        const model = String((definition.modelConfig as { defaultModel?: string } | null)?.defaultModel ?? "");
        sources = await resolveSources(db, secretBox(this.env), {
          tenantId: setup.tenantId,
          requirements: definition.credentialRequirements ?? [],
          creatorPrincipalId: definition.creatorPrincipalId,
          invokerPrincipalId: session.principalId,
          model,
          now: new Date(),
        });
      }
    } catch (err) {
      console.error("re-resolving sources failed; keeping the sidecar's", err);
    }
    return { grants, sources };
  }

  async buildUserMail(input: UserMailInput, setup: SetupLike, connector: ConnectorState) {
    const db = getDb(this.env);
    const domain = mailDomain(setup.config.agentAddress);
    const prior = await db
      .select({ id: sessionMail.id })
      .from(sessionMail)
      .where(
        and(
          eq(sessionMail.instanceId, setup.instanceId),
          eq(sessionMail.direction, "inbound"),
          eq(sessionMail.status, "delivered"),
        ),
      )
      .orderBy(desc(sessionMail.createdAt), desc(sessionMail.id))
      .limit(100);
    // The newest 100, oldest first: In-Reply-To names the latest message even in a long thread.
    const threading = threadHeaders({
      priorInboundMessageIds: prior.reverse().map((p) => `<${p.id}@${domain}>`),
      connectorState: connector,
    });
    const sign = await mailSigner((await this.key()).privateKeyArmored);
    const raw = await buildUserMessage({
      from: { name: input.from.name ?? undefined, email: input.from.email },
      to: { email: setup.config.agentAddress },
      subject: input.subject,
      text: input.content,
      messageId: `<${input.mailId}@${domain}>`,
      inReplyTo: threading.inReplyTo,
      references: threading.references,
      date: new Date(),
      headers: {
        "Interchange-Type": "conversation.message",
        "Interchange-Tenant-ID": setup.tenantId,
        "Interchange-Session-ID": setup.config.sessionId,
      },
      sign,
    });
    return { raw, base64: bytesToBase64(raw) };
  }

  private async storeRaw(tenantId: string, mailId: string, raw: Uint8Array) {
    if (raw.byteLength <= INLINE_MAIL_BYTES) return { raw, rawKey: null };
    const rawKey = `mail/${tenantId}/${mailId}.eml`;
    await this.env.BLOBS.put(rawKey, raw, { httpMetadata: { contentType: "message/rfc822" } });
    return { raw: null, rawKey };
  }

  async storeInbound(
    db: Db,
    setup: SetupLike,
    mailId: string,
    raw: Uint8Array,
    delivered: boolean,
  ): Promise<InstanceMail> {
    const now = new Date();
    const stored = await this.storeRaw(setup.tenantId, mailId, raw);
    const email = parseMailToEmail(raw, mailId);
    await db.insert(sessionMail).values({
      id: mailId,
      sessionId: setup.config.sessionId,
      instanceId: setup.instanceId,
      tenantId: setup.tenantId,
      direction: "inbound",
      status: delivered ? "delivered" : "pending",
      messageId: email.messageId ?? null,
      raw: stored.raw,
      rawKey: stored.rawKey,
      size: raw.byteLength,
      createdAt: now,
    });
    return {
      id: mailId,
      raw,
      email: {
        ...email,
        id: mailId,
        direction: "inbound",
        status: delivered ? "delivered" : "pending",
        receivedAt: now.toISOString(),
      },
    };
  }

  /** Mail the agent sent (already delivered by the sidecar where it had to go). */
  async storeOutbound(db: Db, setup: SetupLike, rawBase64: string): Promise<InstanceMail | null> {
    let raw: Uint8Array;
    try {
      raw = base64ToBytes(rawBase64);
    } catch {
      return null;
    }
    const mailId = newId("sessionMail");
    const now = new Date();
    const stored = await this.storeRaw(setup.tenantId, mailId, raw);
    let email: Email;
    try {
      email = parseMailToEmail(raw, mailId);
    } catch {
      return null;
    }
    await db.insert(sessionMail).values({
      id: mailId,
      sessionId: setup.config.sessionId,
      instanceId: setup.instanceId,
      tenantId: setup.tenantId,
      direction: "outbound",
      status: "delivered",
      messageId: email.messageId ?? null,
      raw: stored.raw,
      rawKey: stored.rawKey,
      size: raw.byteLength,
      createdAt: now,
    });
    return {
      id: mailId,
      raw,
      email: { ...email, id: mailId, direction: "outbound", status: "delivered", receivedAt: now.toISOString() },
    };
  }

  async markDelivered(db: Db, mailIds: string[]): Promise<void> {
    await db.update(sessionMail).set({ status: "delivered" }).where(inArray(sessionMail.id, mailIds));
  }

  async instanceByAddress(db: Db, tenantId: string, address: string) {
    const bare = address.replace(/^.*</, "").replace(/>.*$/, "").trim().toLowerCase();
    return db.query.agentInstance.findFirst({
      where: and(
        eq(agentInstance.tenantId, tenantId),
        eq(agentInstance.address, bare),
        isNotNull(agentInstance.sessionId),
      ),
    });
  }
}
