/** The tenant's agent instances: their state as it changes, a Stop per live one, and a Launch form. */
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useId, useState } from "react";
import { Link } from "react-router";
import { api, type Page, tenantPath, withQuery } from "../api";
import { instanceKeys } from "../instance/keys";
import { StopButton } from "../instance/stop-button";
import type { Schema } from "../schemas";
import { useAgents } from "../tenant-lists";
import { useTenantId } from "../tenants";
import { FormError, PageTitle, QueryView, ScrollTable, StatusBadge, Time } from "../ui";
import "./instances.css";

type Instance = Schema<"AgentInstance">;

/** Instance lists change on the server by themselves (a launch settles, a sidecar drops): poll them. */
const POLL_MS = 3000;
/** Live instances whose runtime status we fetch one by one (the list route does not carry it). */
const MAX_RUNTIME_LOOKUPS = 50;

/** Live = neither stopped nor failed, the hub's own definition (what Stop accepts). */
export function isLive(instance: Instance): boolean {
  return instance.status !== "stopped" && instance.status !== "error";
}

/** The instances of the tenant, or of one agent, refetched every 3 s. */
export function useInstances(tenantId: string, agentId?: string) {
  return useQuery({
    queryKey: ["tenant", tenantId, "instances", { agentId: agentId ?? null }],
    queryFn: () =>
      api<Page<Instance>>("GET", withQuery(tenantPath(tenantId, "agents/instances"), { limit: 100, agentId })),
    refetchInterval: POLL_MS,
  });
}

/** `runtimeStatus` (idle, busy, waiting_approval) comes only with GET of one instance: ask for the live ones. */
function useRuntimeStatuses(tenantId: string, instances: Instance[]): Map<string, string | undefined> {
  const live = instances.filter(isLive).slice(0, MAX_RUNTIME_LOOKUPS);
  const results = useQueries({
    queries: live.map((i) => ({
      // The instance page's key for the same GET: the two share one cache entry.
      queryKey: instanceKeys.detail(tenantId, i.id),
      queryFn: () => api<Instance>("GET", tenantPath(tenantId, `agents/instances/${encodeURIComponent(i.id)}`)),
      refetchInterval: POLL_MS,
    })),
  });
  const map = new Map<string, string | undefined>();
  live.forEach((i, n) => {
    map.set(i.id, results[n]?.data?.runtimeStatus);
  });
  return map;
}

export function InstancesPage() {
  const tenantId = useTenantId();
  const instances = useInstances(tenantId);
  return (
    <>
      <PageTitle>Instances</PageTitle>
      <QueryView
        query={instances}
        label="Loading instances"
        isEmpty={(page) => page.data.length === 0}
        empty="No instance yet. Launch one below."
      >
        {(page) => <InstanceTable tenantId={tenantId} instances={page.data} more={page.nextCursor !== null} />}
      </QueryView>
      <LaunchForm tenantId={tenantId} />
    </>
  );
}

/** A table of instances with their state and a Stop per live one; also used on an agent's page. */
export function InstanceTable({
  tenantId,
  instances,
  more,
  showAgent = true,
}: {
  tenantId: string;
  instances: Instance[];
  more?: boolean;
  showAgent?: boolean;
}) {
  const runtime = useRuntimeStatuses(tenantId, instances);
  return (
    <>
      <ScrollTable label="Instances">
        <table className="instances-table">
          <thead>
            <tr>
              <th scope="col">Instance</th>
              {showAgent && <th scope="col">Agent</th>}
              <th scope="col">Status</th>
              <th scope="col">Runtime</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {instances.map((i) => (
              <tr key={i.id}>
                <td>
                  <Link id={`instance-${i.id}`} className="instance-id" to={`/t/${tenantId}/instances/${i.id}`}>
                    <code title={i.id}>{i.id}</code>
                  </Link>
                </td>
                {showAgent && (
                  <td>
                    <Link to={`/t/${tenantId}/agents/${i.agentId}`}>{i.agentName}</Link>
                  </td>
                )}
                <td>
                  <StatusBadge status={i.status} />
                  {i.stopReason && <small className="stop-reason"> ({i.stopReason})</small>}
                </td>
                <td>{isLive(i) ? (runtime.get(i.id) ?? "—") : "—"}</td>
                <td>
                  <Time at={i.createdAt} />
                </td>
                <td>{isLive(i) && <StopButton tenantId={tenantId} instanceId={i.id} question={`Stop ${i.id}?`} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollTable>
      {more && <p className="empty">Showing the 100 most recent instances.</p>}
    </>
  );
}

function LaunchForm({ tenantId }: { tenantId: string }) {
  const client = useQueryClient();
  const [agentId, setAgentId] = useState("");
  // A plain <label for>: a wrapping label would add every option to the select's accessible name.
  const agentSelectId = useId();
  const agents = useAgents(tenantId);
  const launch = useMutation({
    mutationFn: (body: { agentId: string }) => api<Instance>("POST", tenantPath(tenantId, "agents/instances"), body),
    onSuccess: () => client.invalidateQueries({ queryKey: ["tenant", tenantId] }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    launch.mutate({ agentId });
  };
  return (
    <section aria-labelledby="launch-instance">
      <h2 id="launch-instance">Launch an instance</h2>
      <QueryView
        query={agents}
        label="Loading agents"
        isEmpty={(page) => page.data.length === 0}
        empty={
          <>
            No agent to launch. <Link to={`/t/${tenantId}/agents`}>Create an agent</Link> first.
          </>
        }
      >
        {(page) => (
          <form onSubmit={submit}>
            <div className="grid">
              <div>
                <label htmlFor={agentSelectId}>Agent</label>
                <select id={agentSelectId} required value={agentId} onChange={(e) => setAgentId(e.target.value)}>
                  <option value="" disabled>
                    Choose an agent…
                  </option>
                  {page.data.map((a) => (
                    <option key={a.id} value={a.id} disabled={a.status === "stopped"}>
                      {a.name}
                      {a.status === "stopped" ? " (stopped)" : ""}
                    </option>
                  ))}
                </select>
              </div>
            </div>
            <FormError error={launch.error} />
            <div aria-live="polite" role="status">
              {launch.isSuccess && (
                <p>
                  Launched{" "}
                  <Link to={`/t/${tenantId}/instances/${launch.data.id}`}>
                    <code>{launch.data.id}</code>
                  </Link>{" "}
                  ({launch.data.status}).
                </p>
              )}
            </div>
            <button type="submit" aria-busy={launch.isPending} disabled={launch.isPending}>
              Launch
            </button>
          </form>
        )}
      </QueryView>
    </section>
  );
}
