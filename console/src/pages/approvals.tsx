/**
 * The tenant's approvals inbox (docs/approvals.md): what agents wait for, with the three decisions, and
 * what was decided lately. Agents ask on their own schedule, so the inbox polls.
 */
import { useMutation, useQueries, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { api, tenantPath, withQuery } from "../api";
import { approvalKeys, instanceKeys } from "../instance/keys";
import type { Schema } from "../schemas";
import { useAgents, usePendingApprovals } from "../tenant-lists";
import { useTenantId } from "../tenants";
import { Empty, ErrorNote, FormError, Loading, PageTitle, QueryView, ScrollTable, Time } from "../ui";
import "./approvals.css";

type Approval = Schema<"Approval">;
type Decision =
  | { verb: "approve"; body: Schema<"ApproveApproval"> }
  | { verb: "reject"; body: Schema<"RejectApproval"> };

const DECIDED = ["approved", "rejected", "expired"] as const;

function listApprovals(tenantId: string, status: string, limit: number) {
  return api<Schema<"ApprovalList">>("GET", withQuery(tenantPath(tenantId, "approvals"), { status, limit }));
}

/** Agent names by id, to say who asks in words rather than ids. */
function useAgentNames(tenantId: string) {
  const agents = useAgents(tenantId);
  return new Map((agents.data?.data ?? []).map((a) => [a.id, a.name]));
}

export function ApprovalsPage() {
  const tenantId = useTenantId();
  const names = useAgentNames(tenantId);
  const pending = usePendingApprovals(tenantId);
  return (
    <>
      <PageTitle>Approvals</PageTitle>
      <section aria-labelledby="pending-heading">
        <h2 id="pending-heading">
          Waiting for you
          {pending.data && pending.data.data.length > 0 && (
            <small className="apv-count"> ({pending.data.data.length})</small>
          )}
        </h2>
        <QueryView
          query={pending}
          label="Loading the approvals"
          isEmpty={(page) => page.data.length === 0}
          empty="No approval waits for you."
        >
          {(page) => (
            <ul className="apv-approvals">
              {page.data.map((approval) => (
                <li key={approval.id}>
                  <PendingApproval approval={approval} tenantId={tenantId} agentName={names.get(approval.agentId)} />
                </li>
              ))}
            </ul>
          )}
        </QueryView>
      </section>
      <Decided tenantId={tenantId} names={names} />
    </>
  );
}

function PendingApproval({
  approval,
  tenantId,
  agentName,
}: {
  approval: Approval;
  tenantId: string;
  agentName: string | undefined;
}) {
  const client = useQueryClient();
  const [message, setMessage] = useState("");
  const decide = useMutation({
    mutationFn: (d: Decision) =>
      api<Approval>("POST", tenantPath(tenantId, `approvals/${encodeURIComponent(approval.id)}/${d.verb}`), d.body),
    onSettled: () => {
      // Decided here or elsewhere (409): either way the lists and the instance's status move on.
      void client.invalidateQueries({ queryKey: approvalKeys.all(tenantId) });
      if (approval.instanceId)
        void client.invalidateQueries({ queryKey: instanceKeys.detail(tenantId, approval.instanceId) });
    },
  });
  const headingId = `approval-${approval.id}`;
  const busy = decide.isPending;
  const which = decide.isPending ? decide.variables : undefined;
  const reject = () => {
    const text = message.trim();
    decide.mutate({ verb: "reject", body: text ? { message: text } : {} });
  };
  return (
    <article aria-labelledby={headingId} className="apv-approval">
      <header>
        <h3 id={headingId}>
          <code>{approval.action}</code> on <code>{approval.resource}</code>
        </h3>
        <p className="apv-approval-meta">
          Asked by {agentName ?? <code>{approval.agentId}</code>}
          {approval.instanceId && (
            <>
              {" "}
              (instance{" "}
              <Link to={`/t/${tenantId}/instances/${approval.instanceId}`}>
                <code>{approval.instanceId}</code>
              </Link>
              )
            </>
          )}{" "}
          · <Time at={approval.createdAt} />
          {approval.expiresAt && (
            <>
              {" "}
              · expires <Time at={approval.expiresAt} />
            </>
          )}
        </p>
      </header>
      <Context context={approval.context} />
      <div className="apv-decision">
        <button
          type="button"
          aria-busy={which?.verb === "approve" && which.body.scope === "once"}
          disabled={busy}
          onClick={() => decide.mutate({ verb: "approve", body: { scope: "once" } })}
        >
          Approve once
        </button>
        <button
          type="button"
          className="secondary"
          aria-busy={which?.verb === "approve" && which.body.scope === "always"}
          disabled={busy}
          onClick={() => decide.mutate({ verb: "approve", body: { scope: "always" } })}
        >
          Approve always
        </button>
        <button
          type="button"
          className="apv-danger apv-outline"
          aria-busy={which?.verb === "reject"}
          disabled={busy}
          onClick={reject}
        >
          Reject
        </button>
      </div>
      <label className="apv-reject-message">
        Message to the agent if you reject (optional)
        <input value={message} maxLength={2000} onChange={(e) => setMessage(e.target.value)} disabled={busy} />
      </label>
      <small className="apv-muted">“Approve always” lets this agent do exactly this without asking again.</small>
      <FormError error={decide.error} />
    </article>
  );
}

/** What the agent said about the action: an API request's method, path and body, or a tool's arguments. */
function Context({ context }: { context: Approval["context"] }) {
  const entries = Object.entries(context ?? {});
  if (entries.length === 0) return <p className="apv-muted">No details given.</p>;
  const { method, path, body } = context as { method?: unknown; path?: unknown; body?: unknown };
  if (typeof method === "string" && typeof path === "string")
    return (
      <div className="apv-context">
        <p>
          API request: <code>{method}</code> <code className="apv-wrap">{path}</code>
        </p>
        {body !== undefined && <pre>{JSON.stringify(body, null, 2)}</pre>}
      </div>
    );
  return (
    <dl className="apv-context">
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{typeof v === "string" ? v : <code className="apv-wrap">{JSON.stringify(v)}</code>}</dd>
        </div>
      ))}
    </dl>
  );
}

function Decided({ tenantId, names }: { tenantId: string; names: Map<string, string> }) {
  const lists = useQueries({
    queries: DECIDED.map((status) => ({
      queryKey: [...approvalKeys.all(tenantId), "inbox", status],
      queryFn: () => listApprovals(tenantId, status, 20),
      refetchInterval: 15_000,
    })),
  });
  const failed = lists.find((q) => q.isError);
  const rows = lists
    .flatMap((q) => q.data?.data ?? [])
    .sort((a, b) => (b.resolvedAt ?? b.createdAt).localeCompare(a.resolvedAt ?? a.createdAt))
    .slice(0, 20);
  return (
    <section aria-labelledby="decided-heading">
      <h2 id="decided-heading">Recently decided</h2>
      {lists.some((q) => q.isPending) ? (
        <Loading label="Loading the decided approvals" />
      ) : failed ? (
        <ErrorNote
          error={failed.error}
          retry={() => {
            for (const q of lists) void q.refetch();
          }}
        />
      ) : rows.length === 0 ? (
        <Empty>Nothing decided yet.</Empty>
      ) : (
        <ScrollTable label="Recently decided">
          <table>
            <thead>
              <tr>
                <th scope="col">Decided</th>
                <th scope="col">Decision</th>
                <th scope="col">Action</th>
                <th scope="col">Agent</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Time at={a.resolvedAt ?? a.expiresAt} />
                  </td>
                  <td>
                    <span className={`apv-badge apv-badge-${a.status}`}>
                      {a.status}
                      {a.scope ? ` (${a.scope})` : ""}
                    </span>
                  </td>
                  <td>
                    <code>{a.action}</code> on <code>{a.resource}</code>
                  </td>
                  <td>
                    {names.get(a.agentId) ?? <code>{a.agentId}</code>}
                    {a.instanceId && (
                      <>
                        {" · "}
                        <Link to={`/t/${tenantId}/instances/${a.instanceId}`}>
                          <code>{a.instanceId.slice(0, 12)}…</code>
                        </Link>
                      </>
                    )}
                  </td>
                  <td>{a.message ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollTable>
      )}
    </section>
  );
}
