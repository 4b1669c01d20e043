/**
 * One agent instance: its status and controls, its live event stream, its mail, turns, timeline, state
 * files and logs. The live stream keeps the other panels current by invalidating their queries.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api";
import { approvalKeys, instanceKeys, instancePath } from "../instance/keys";
import { LiveStream } from "../instance/live-stream";
import { MailPanel } from "../instance/mail";
import { LogsPanel, StateFilesPanel, TimelinePanel } from "../instance/panels";
import { StopButton } from "../instance/stop-button";
import { TurnsPanel, useTurns } from "../instance/turns";
import { type LiveEvent, useBatchedInvalidation, useLiveEvents } from "../live-events";
import type { Schema } from "../schemas";
import { useTenantId } from "../tenants";
import { ErrorNote, FormError, Loading, PageTitle, Time } from "../ui";
import "./instance.css";

type Instance = Schema<"AgentInstance">;

export function InstancePage() {
  const tenantId = useTenantId();
  const { instanceId = "" } = useParams();
  const client = useQueryClient();
  const instance = useQuery({
    queryKey: instanceKeys.detail(tenantId, instanceId),
    queryFn: () => api<Instance>("GET", instancePath(tenantId, instanceId)),
    // Live events keep it current; the interval covers what the stream does not say (e.g. while offline).
    refetchInterval: 10_000,
  });
  const stopped = instance.data?.status === "stopped";
  const invalidate = useBatchedInvalidation();

  const onEvent = useCallback(
    (event: LiveEvent) => {
      const k = (f: (t: string, i: string) => readonly unknown[]) => invalidate(f(tenantId, instanceId));
      const t = event.type;
      if (t === "runtime.status") {
        // Show the new status at once; the refetch then brings the rest.
        const status = typeof event.data.status === "string" ? event.data.status : undefined;
        client.setQueryData<Instance>(instanceKeys.detail(tenantId, instanceId), (old) =>
          old && status ? { ...old, runtimeStatus: status } : old,
        );
      }
      if (t === "mail.delivered") {
        k(instanceKeys.mail);
        k(instanceKeys.timeline);
      }
      if (t.startsWith("turn.") || t === "usage.charged" || t === "inference.done" || t === "inference.error") {
        k(instanceKeys.turns);
        k(instanceKeys.timeline);
      }
      if (
        t.startsWith("instance.") ||
        t.startsWith("session.") ||
        t.startsWith("sidecar.") ||
        t === "runtime.status" ||
        t.startsWith("approval.")
      )
        k(instanceKeys.detail);
      if (t.startsWith("approval.")) invalidate(approvalKeys.all(tenantId));
      if (t.startsWith("state.")) k(instanceKeys.data);
      // Most of what the hub does is also written to the instance's log; deltas are not.
      if (!t.startsWith("inference.")) k(instanceKeys.logs);
    },
    [client, invalidate, tenantId, instanceId],
  );

  const url = stopped ? null : instancePath(tenantId, instanceId, "events");
  const live = useLiveEvents(url, { from: 0, max: 500, onEvent });
  const turns = useTurns(tenantId, instanceId);

  // What each turn cost: the turns list, updated by the `usage.charged` events seen since.
  const turnCosts = useMemo(() => {
    const costs = new Map<string, string>();
    for (const turn of turns.data?.data ?? []) costs.set(turn.id, turn.cost);
    for (const e of live.events)
      if (e.type === "usage.charged" && typeof e.data.turnId === "string" && typeof e.data.amount === "string")
        if (!turns.data?.data.some((x) => x.id === e.data.turnId)) costs.set(e.data.turnId, e.data.amount);
    return costs;
  }, [turns.data, live.events]);

  if (instance.isPending) return <Loading label="Loading the instance" />;
  if (instance.isError)
    return (
      <>
        <PageTitle>Instance</PageTitle>
        <ErrorNote error={instance.error} retry={() => instance.refetch()} />
        <p>
          <Link to={`/t/${tenantId}/instances`}>Back to the instances</Link>
        </p>
      </>
    );
  const ins = instance.data;
  return (
    <>
      <InstanceHeader instance={ins} tenantId={tenantId} />
      <div className="grid ins-instance-main">
        <LiveStream
          tenantId={tenantId}
          events={live.events}
          state={stopped ? "offline" : live.state}
          ended={stopped || live.ended}
          turnCosts={turnCosts}
        />
        <MailPanel tenantId={tenantId} instanceId={instanceId} stopped={stopped} />
      </div>
      <TurnsPanel tenantId={tenantId} instanceId={instanceId} />
      <TimelinePanel tenantId={tenantId} instanceId={instanceId} />
      <StateFilesPanel tenantId={tenantId} instanceId={instanceId} />
      <LogsPanel tenantId={tenantId} instanceId={instanceId} />
    </>
  );
}

const RUNTIME_TEXT: Record<string, string> = {
  idle: "idle",
  busy: "busy (a turn runs)",
  waiting_approval: "waiting for an approval",
};

function InstanceHeader({ instance, tenantId }: { instance: Instance; tenantId: string }) {
  const stopped = instance.status === "stopped";
  const turnRuns = instance.runtimeStatus === "busy" || instance.runtimeStatus === "waiting_approval";
  return (
    <>
      <PageTitle
        actions={
          !stopped && (
            <>
              {turnRuns && <AbortTurn tenantId={tenantId} instanceId={instance.id} />}
              <StopButton tenantId={tenantId} instanceId={instance.id} />
            </>
          )
        }
      >
        {instance.agentName} <small className="ins-muted">instance</small>
      </PageTitle>
      <dl className="ins-instance-facts">
        <div>
          <dt>Instance</dt>
          <dd>
            <code>{instance.id}</code>
          </dd>
        </div>
        <div>
          <dt>Agent</dt>
          <dd>
            <Link to={`/t/${tenantId}/agents/${instance.agentId}`}>{instance.agentName}</Link>
          </dd>
        </div>
        <div aria-live="polite">
          <dt>Status</dt>
          <dd>
            <span className={`ins-badge ins-badge-${instance.status}`}>{instance.status}</span>
            {instance.stopReason && <small> ({instance.stopReason})</small>}
          </dd>
        </div>
        <div aria-live="polite">
          <dt>Runtime</dt>
          <dd>
            {stopped || !instance.runtimeStatus ? (
              "—"
            ) : (
              <span className={`ins-badge ins-badge-${instance.runtimeStatus}`}>
                {RUNTIME_TEXT[instance.runtimeStatus] ?? instance.runtimeStatus}
              </span>
            )}
            {instance.runtimeStatus === "waiting_approval" && (
              <>
                {" "}
                <Link to={`/t/${tenantId}/approvals`}>Decide in Approvals</Link>
              </>
            )}
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>
            <Time at={instance.createdAt} />
          </dd>
        </div>
        {instance.endedAt && (
          <div>
            <dt>Ended</dt>
            <dd>
              <Time at={instance.endedAt} />
            </dd>
          </div>
        )}
        <div>
          <dt>Address</dt>
          <dd>
            <code>{instance.address}</code>
          </dd>
        </div>
      </dl>
    </>
  );
}

function AbortTurn({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  const client = useQueryClient();
  const abort = useMutation({
    mutationFn: () => api<null>("POST", instancePath(tenantId, instanceId, "abort"), {}),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: instanceKeys.detail(tenantId, instanceId) });
      void client.invalidateQueries({ queryKey: instanceKeys.turns(tenantId, instanceId) });
    },
  });
  return (
    <div className="ins-confirm">
      <button
        type="button"
        className="secondary outline"
        aria-busy={abort.isPending}
        disabled={abort.isPending}
        onClick={() => abort.mutate()}
      >
        Abort turn
      </button>
      <FormError error={abort.error} />
    </div>
  );
}
