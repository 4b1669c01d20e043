/** The instance's mail thread (oldest first) and a composer that mails the agent. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, type KeyboardEvent, useLayoutEffect, useRef, useState } from "react";
import { api, withQuery } from "../api";
import type { Schema } from "../schemas";
import { FormError, QueryView, Time } from "../ui";
import { instanceKeys, instancePath } from "./keys";

type Mail = Schema<"Mail">;

/** The text of a JMAP message: its text/plain parts, in order. */
export function mailText(mail: Pick<Mail, "textBody" | "bodyValues">): string {
  return (mail.textBody ?? [])
    .map((part) => mail.bodyValues?.[part.partId]?.value ?? "")
    .join("\n")
    .trim();
}

function sender(mail: Mail): string {
  if (mail.direction === "outbound") return "Agent";
  const from = mail.from[0];
  return from?.name || from?.email || "You";
}

export function MailPanel({
  tenantId,
  instanceId,
  stopped,
}: {
  tenantId: string;
  instanceId: string;
  stopped: boolean;
}) {
  const mail = useQuery({
    queryKey: instanceKeys.mail(tenantId, instanceId),
    queryFn: () =>
      api<Schema<"MailPage">>("GET", withQuery(instancePath(tenantId, instanceId, "mail"), { limit: 100 })),
  });
  return (
    <section aria-labelledby="mail-heading" className="ins-instance-panel">
      <h2 id="mail-heading">Mail</h2>
      <QueryView
        query={mail}
        label="Loading the mail"
        isEmpty={(page) => page.data.length === 0}
        empty="No mail yet. Write to the agent below."
      >
        {(page) => <Thread mail={page.data} />}
      </QueryView>
      <Composer tenantId={tenantId} instanceId={instanceId} stopped={stopped} />
    </section>
  );
}

/** Oldest first, scrolled to the newest message whenever one arrives. */
function Thread({ mail }: { mail: Mail[] }) {
  const list = useRef<HTMLOListElement>(null);
  useLayoutEffect(() => {
    const el = list.current;
    if (el && mail.length > 0) el.scrollTop = el.scrollHeight;
  }, [mail]);
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard
    <ol className="ins-thread" ref={list} tabIndex={0} aria-label="Thread">
      {/* The API lists newest first; a thread reads oldest first. */}
      {[...mail].reverse().map((m) => (
        <li key={m.id} className={m.direction === "outbound" ? "ins-from-agent" : "ins-to-agent"}>
          <p className="ins-thread-meta">
            <strong>{sender(m)}</strong> <Time at={m.receivedAt} />
            {m.subject && <> · {m.subject}</>}
            {m.status !== "delivered" && <> · {m.status}</>}
          </p>
          <p className="ins-thread-text">{mailText(m) || <em>(no text)</em>}</p>
          {m.attachments.length > 0 && (
            <p className="ins-thread-meta">Attachments: {m.attachments.map((a) => a.name ?? a.blobId).join(", ")}</p>
          )}
        </li>
      ))}
    </ol>
  );
}

function Composer({ tenantId, instanceId, stopped }: { tenantId: string; instanceId: string; stopped: boolean }) {
  const client = useQueryClient();
  const [content, setContent] = useState("");
  const send = useMutation({
    mutationFn: (body: { content: string }) => api<Mail>("POST", instancePath(tenantId, instanceId, "mail"), body),
    onSuccess: () => {
      setContent("");
      void client.invalidateQueries({ queryKey: instanceKeys.mail(tenantId, instanceId) });
      void client.invalidateQueries({ queryKey: instanceKeys.timeline(tenantId, instanceId) });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (content.trim() && !send.isPending) send.mutate({ content });
  };
  // Ctrl/Cmd+Enter sends, as in most chat boxes; Enter alone adds a line.
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit(e);
  };
  return (
    <form onSubmit={submit} className="ins-composer">
      <label>
        Message
        <textarea
          required
          rows={3}
          maxLength={100_000}
          value={content}
          onChange={(e) => setContent(e.target.value)}
          onKeyDown={onKeyDown}
          disabled={stopped}
          aria-describedby="composer-hint"
        />
        <small id="composer-hint">
          {stopped ? "The instance has stopped: it takes no more mail." : "Ctrl+Enter sends."}
        </small>
      </label>
      <FormError error={send.error} />
      <button type="submit" aria-busy={send.isPending} disabled={send.isPending || stopped}>
        Send
      </button>
    </form>
  );
}
