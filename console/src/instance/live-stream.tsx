/**
 * The "Live stream" panel: every event of the instance as a list item (`data-event-id` = its id), with
 * the agent's text deltas flowing inline so a reply reads as it is written.
 */

import { type ReactNode, useLayoutEffect, useRef } from "react";
import { Link } from "react-router";
import { formatDecimal } from "../decimal";
import type { LiveEvent, LiveState } from "../live-events";
import { mailText } from "./mail";

const STATE_TEXT: Record<LiveState, string> = { live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };

/** Events whose text continues the previous one: rendered inline, as one paragraph. */
const INLINE = new Set(["inference.text.delta", "inference.thinking.delta", "inference.tool_call.delta"]);

export function LiveStream({
  tenantId,
  events,
  state,
  ended,
  turnCosts,
}: {
  tenantId: string;
  events: LiveEvent[];
  state: LiveState;
  ended: boolean;
  /** What each turn cost, by turn id (from `usage.charged` and the turns list). */
  turnCosts: Map<string, string>;
}) {
  const box = useRef<HTMLElement>(null);
  const pinned = useRef(true);
  // Follow the stream while the reader is at the bottom; leave them be when they scrolled up.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs whenever the events change
  useLayoutEffect(() => {
    const el = box.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [events]);
  return (
    <section aria-labelledby="live-heading" className="ins-instance-panel live">
      <div className="ins-live-head">
        <h2 id="live-heading">Live stream</h2>
        <span role="status" className={`ins-live-state ins-live-state-${state}`}>
          {STATE_TEXT[state]}
        </span>
      </div>
      {ended && <p className="ins-muted">The instance has stopped: its stream is closed.</p>}
      <section
        ref={box}
        className="ins-live-log"
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard
        tabIndex={0}
        aria-label="Events"
        onScroll={(e) => {
          const el = e.currentTarget;
          pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {events.length === 0 ? (
          <p className="empty">
            {ended
              ? "No events to show: Turns and Mail keep the instance's history."
              : state === "live"
                ? "Waiting for events…"
                : "No events yet."}
          </p>
        ) : (
          <ul className="ins-events">
            {events.map((event, i) => {
              const prev = events[i - 1];
              const inline = INLINE.has(event.type);
              const startsRun = inline && prev?.type !== event.type;
              return (
                <li
                  key={event.key}
                  data-event-id={event.id ?? undefined}
                  data-type={event.type}
                  className={
                    inline
                      ? `ins-ev-inline ${startsRun ? "ins-ev-run-start" : ""}`
                      : `ins-ev ins-ev-${category(event.type)}`
                  }
                >
                  {inline ? (
                    <InlineEvent event={event} startsRun={startsRun} />
                  ) : (
                    <EventLine event={event} tenantId={tenantId} turnCosts={turnCosts} />
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </section>
    </section>
  );
}

function category(type: string): string {
  if (type.startsWith("approval.") || type.startsWith("reactor.gate")) return "approval";
  if (type.startsWith("turn.")) return "turn";
  if (type.startsWith("tool.") || type.startsWith("inference.tool_call")) return "tool";
  if (type.endsWith(".error") || type.endsWith(".failed") || type.endsWith(".rejected") || type === "wallet.exhausted")
    return "error";
  if (type.startsWith("mail.") || type === "connector.reply") return "mail";
  return "info";
}

function InlineEvent({ event, startsRun }: { event: LiveEvent; startsRun: boolean }) {
  const text = str(event.data.token) ?? str(event.data.delta) ?? "";
  const label =
    event.type === "inference.thinking.delta"
      ? "Thinking: "
      : event.type === "inference.tool_call.delta"
        ? "Arguments: "
        : "Reply: ";
  return (
    <>
      {startsRun && <span className="ins-ev-label">{label}</span>}
      {event.type === "inference.tool_call.delta" ? <code>{text}</code> : text}
    </>
  );
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function json(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

function short(id: unknown): string {
  const s = str(id) ?? "";
  return s.length > 14 ? `${s.slice(0, 12)}…` : s;
}

function Line({ label, children }: { label: string; children?: ReactNode }) {
  return (
    <>
      <span className="ins-ev-label">{label}</span>
      {children !== undefined && <> {children}</>}
    </>
  );
}

function EventLine({
  event,
  tenantId,
  turnCosts,
}: {
  event: LiveEvent;
  tenantId: string;
  turnCosts: Map<string, string>;
}) {
  const d = event.data;
  switch (event.type) {
    case "instance.launched":
      return <Line label="Instance launched" />;
    case "instance.running":
      return <Line label="Instance running" />;
    case "mail.delivered": {
      const text = mailText(d as Parameters<typeof mailText>[0]);
      return (
        <Line label={d.direction === "outbound" ? "Mail from the agent:" : "Mail to the agent:"}>
          <span className="ins-ev-text">{text || "(no text)"}</span>
        </Line>
      );
    }
    case "inference.start":
      return (
        <Line label="Model call started">
          <code>{str(d.model)}</code>
        </Line>
      );
    case "inference.text.replay":
      return (
        <Line label="Reply so far:">
          <span className="ins-ev-text">{str(d.text)}</span>
        </Line>
      );
    case "inference.tool_call.start":
      return (
        <Line label="Tool call">
          <code>{str(d.name)}</code>
        </Line>
      );
    case "inference.tool_call.end":
      return (
        <Line label="Tool call">
          <code>
            {str(d.name)}({json(d.arguments)})
          </code>
        </Line>
      );
    case "inference.usage":
    case "inference.done": {
      const usage = (d.usage ?? {}) as Record<string, unknown>;
      const counts =
        typeof usage.input === "number" || typeof usage.output === "number"
          ? `${usage.input ?? 0} tokens in, ${usage.output ?? 0} out`
          : undefined;
      return <Line label={event.type === "inference.done" ? "Model call done" : "Usage"}>{counts}</Line>;
    }
    case "inference.error":
    case "reactor.error": {
      const err = (d.error ?? {}) as Record<string, unknown>;
      return (
        <Line label="Error:">
          {str(err.message) ?? str(err.category) ?? json(d.error)}
          {str(err.category) && str(err.message) && <small> ({str(err.category)})</small>}
        </Line>
      );
    }
    case "inference.retry":
      return <Line label="Retrying the model call">attempt {json(d.attempt)}</Line>;
    case "tool.start": {
      const call = (d.call ?? {}) as Record<string, unknown>;
      return (
        <Line label="Running tool">
          <code>
            {str(call.name)}({json(call.arguments)})
          </code>
        </Line>
      );
    }
    case "tool.done": {
      const result = (d.result ?? {}) as Record<string, unknown>;
      return (
        <Line label={result.isError ? "Tool failed:" : "Tool returned:"}>
          <span className="ins-ev-text">{str(result.content) ?? json(result.content)}</span>
        </Line>
      );
    }
    case "connector.reply":
      return (
        <Line label="Reply sent:">
          <span className="ins-ev-text">{str(d.content)}</span>
        </Line>
      );
    case "turn.started":
      return (
        <Line label="Turn started">
          <code>{short(d.turnId)}</code>
        </Line>
      );
    case "turn.committed": {
      const cost = turnCosts.get(str(d.turnId) ?? "");
      return (
        <Line label={`Turn ended: ${str(d.status) ?? "done"}`}>
          {cost !== undefined && <>· cost {formatDecimal(cost)}</>}
          {Array.isArray(d.toolCalls) && d.toolCalls.length > 0 && <> · {d.toolCalls.length} tool call(s)</>}
          {d.hadError === true && <> · had an error</>}
        </Line>
      );
    }
    case "turn.failed":
      return <Line label="Turn failed:">{str(d.reason)}</Line>;
    case "usage.charged":
      return (
        <Line label="Charged">
          {str(d.amount)} <small>(wallet {short(d.walletId)})</small>
        </Line>
      );
    case "wallet.exhausted":
      return (
        <Line label="Wallet exhausted:">
          needs {str(d.required)}, has {str(d.balance)} {str(d.currency)}
        </Line>
      );
    case "approval.requested":
      return (
        <Line label="Approval requested:">
          {str(d.action)} on <code>{str(d.resource)}</code> —{" "}
          <Link to={`/t/${tenantId}/approvals`}>decide in Approvals</Link>
        </Line>
      );
    case "approval.decided":
      return (
        <Line label={`Approval ${str(d.status) ?? "decided"}`}>
          {str(d.scope) && <>({str(d.scope)})</>} {str(d.action)} on <code>{str(d.resource)}</code>
          {str(d.message) && <> — “{str(d.message)}”</>}
        </Line>
      );
    case "reactor.gate.blocked":
      return <Line label="Waiting for a person">({str(d.reason)})</Line>;
    case "reactor.gate.cleared":
      return <Line label="Gate cleared" />;
    case "reactor.done":
      return <Line label="Agent done" />;
    case "runtime.status":
      return <Line label="Runtime status:">{str(d.status)}</Line>;
    case "state.pushed":
    case "state.restored":
      return (
        <Line label={event.type === "state.pushed" ? "State pushed" : "State restored"}>
          <code>{short(d.commitSha)}</code>
        </Line>
      );
    case "sidecar.disconnected":
      return <Line label="Sidecar disconnected" />;
    case "sidecar.reconnected":
      return <Line label="Sidecar reconnected" />;
    case "session.aborted":
      return <Line label="Session aborted">{str(d.reason)}</Line>;
    case "session.ended":
      return <Line label="Session ended">{str(d.reason)}</Line>;
    case "cursor_expired":
      return (
        <Line label="Older events are no longer kept:">
          see Turns and Mail for what came before event {json(d.oldestAvailable)}.
        </Line>
      );
    default:
      return (
        <Line label={event.type}>
          <code className="ins-ev-json">{json(d)}</code>
        </Line>
      );
  }
}
