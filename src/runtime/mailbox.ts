/**
 * Mail of one instance, both ways, for its Durable Object: a user's message is built, signed with the
 * instance's key and threaded after the conversation; inbound mail goes to the sidecar at once or waits in
 * the outbox; every message, either way, is stored (D1, or R2 when large) and streamed as `mail.delivered`.
 * Mail the agent sends to other instances of its tenant is handed to their objects.
 */

import { and, desc, eq, inArray } from "drizzle-orm";
import { type Db, getDb } from "../db/client";
import { sessionMail } from "../db/schema";
import { base64ToBytes, bytesToBase64 } from "../lib/base64";
import { newId } from "../lib/ids";
import { buildUserMessage } from "../mail/build";
import { generateMailKey, mailSigner } from "../mail/keys";
import { MailParseError } from "../mail/mime";
import { parseMailToEmail } from "../mail/parse";
import { threadHeaders } from "../mail/threading";
import type { InstanceSetup } from "./instance-state";
import { getInstanceByAddress } from "./instances";
import type { LiveEvents } from "./live-events";
import type { ConnectorState } from "./protocol";
import { sidecarUnavailable } from "./rpc-result";
import type { SidecarSocket } from "./sidecar-socket";
import { instanceObject } from "./stubs";
import { keepTraceContext, type TraceContext } from "./trace-context";

/** Larger raw messages go to R2 and the row keeps the key. */
export const INLINE_MAIL_BYTES = 256 * 1024;

export type UserMailInput = {
  mailId: string;
  content: string;
  subject?: string | undefined;
  from: { name: string | null; email: string };
  /** From the request's `traceparent`: the turn this message starts continues the caller's trace. */
  trace?: TraceContext | null | undefined;
};

export type Email = ReturnType<typeof parseMailToEmail>;

export type MailDirection = "inbound" | "outbound";

export type InstanceMail = {
  id: string;
  raw: Uint8Array;
  email: Email & { id: string; direction: MailDirection; status: string; receivedAt: string };
};

export function mailDomain(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1);
}

export class InstanceMailbox {
  constructor(
    private readonly env: Env,
    private readonly storage: DurableObjectStorage,
    private readonly socket: SidecarSocket,
    private readonly events: LiveEvents,
  ) {}

  /** A user's message: signed, threaded after the conversation so far, delivered (or kept), stored, streamed. */
  async fromUser(setup: InstanceSetup, input: UserMailInput, connector: ConnectorState): Promise<InstanceMail> {
    const raw = await this.buildUserMail(input, setup, connector);
    // Kept before the sidecar can have it: the turn it starts looks for the context.
    await keepTraceContext(this.storage, input.trace ?? null);
    return this.deliver(setup, input.mailId, raw);
  }

  /** Mail from another agent instance of the tenant. */
  async fromAgent(setup: InstanceSetup, raw: Uint8Array): Promise<InstanceMail> {
    return this.deliver(setup, newId("sessionMail"), raw);
  }

  /**
   * The agent's own mail (the sidecar already sent it where it had to go): stored and streamed; recipients
   * that are instances of the tenant receive it. A message that is not base64 MIME is ignored.
   */
  async fromSidecar(setup: InstanceSetup, rawBase64: string, recipients: readonly string[]): Promise<void> {
    const db = getDb(this.env);
    const mail = { id: newId("sessionMail"), direction: "outbound", status: "delivered" } as const;
    let stored: InstanceMail;
    try {
      stored = await this.store(db, setup, { ...mail, raw: base64ToBytes(rawBase64) });
    } catch (err) {
      if (err instanceof DOMException || err instanceof MailParseError) return;
      throw err;
    }
    for (const recipient of recipients) {
      const target = await getInstanceByAddress(db, setup.tenantId, recipient);
      if (!target || target.id === setup.instanceId) continue;
      await instanceObject(this.env, target.id)
        .receiveAgentMail(stored.raw)
        .catch((err: unknown) => console.error("agent mail delivery failed", err));
    }
  }

  /** Mail kept while the sidecar was away went out on its return. */
  async markDelivered(mailIds: readonly string[]): Promise<void> {
    if (mailIds.length === 0) return;
    await getDb(this.env)
      .update(sessionMail)
      .set({ status: "delivered" })
      .where(inArray(sessionMail.id, [...mailIds]));
  }

  private async deliver(setup: InstanceSetup, mailId: string, raw: Uint8Array): Promise<InstanceMail> {
    const { agentAddress } = setup.config;
    const outcome = this.socket.deliver({ type: "mail.inbound", agentAddress, mailId, rawMessage: bytesToBase64(raw) });
    if (outcome === "dropped") throw sidecarUnavailable("The instance cannot receive mail now");
    const status = outcome === "sent" ? "delivered" : "pending";
    return this.store(getDb(this.env), setup, { id: mailId, raw, direction: "inbound", status });
  }

  /** The instance's signing key: made on first use, then kept (its public half is served). */
  private async key(agentAddress: string): Promise<{ privateKeyArmored: string; publicKeyArmored: string }> {
    const existing = await this.storage.get<{ privateKeyArmored: string; publicKeyArmored: string }>("mailKey");
    if (existing) return existing;
    const made = await generateMailKey(agentAddress);
    const key = { privateKeyArmored: made.privateKeyArmored, publicKeyArmored: made.publicKeyArmored };
    await this.storage.put("mailKey", key);
    return key;
  }

  async publicKeyArmored(agentAddress: string): Promise<string> {
    return (await this.key(agentAddress)).publicKeyArmored;
  }

  private async buildUserMail(input: UserMailInput, setup: InstanceSetup, connector: ConnectorState) {
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
    const sign = await mailSigner((await this.key(setup.config.agentAddress)).privateKeyArmored);
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
    return raw;
  }

  /**
   * Stores and streams one message of the instance, in either direction: parsed first (a message that does
   * not parse is refused before anything is written), the raw bytes inline or in R2 when large, the row.
   */
  private async store(
    db: Db,
    setup: InstanceSetup,
    mail: { id: string; raw: Uint8Array; direction: MailDirection; status: "delivered" | "pending" },
  ): Promise<InstanceMail> {
    const email = parseMailToEmail(mail.raw, mail.id);
    const now = new Date();
    let rawKey: string | null = null;
    if (mail.raw.byteLength > INLINE_MAIL_BYTES) {
      rawKey = `mail/${setup.tenantId}/${mail.id}.eml`;
      await this.env.BLOBS.put(rawKey, mail.raw, { httpMetadata: { contentType: "message/rfc822" } });
    }
    await db.insert(sessionMail).values({
      id: mail.id,
      sessionId: setup.config.sessionId,
      instanceId: setup.instanceId,
      tenantId: setup.tenantId,
      direction: mail.direction,
      status: mail.status,
      messageId: email.messageId ?? null,
      raw: rawKey ? null : mail.raw,
      rawKey,
      size: mail.raw.byteLength,
      createdAt: now,
    });
    const stored: InstanceMail = {
      id: mail.id,
      raw: mail.raw,
      email: { ...email, id: mail.id, direction: mail.direction, status: mail.status, receivedAt: now.toISOString() },
    };
    this.events.record("mail.delivered", stored.email);
    return stored;
  }
}
