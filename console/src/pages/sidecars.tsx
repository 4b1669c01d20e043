/** The tenant's sidecars (the hosts that run instances): their load and heartbeat, registering and removing. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { api, type Page, tenantPath, withQuery } from "../api";
import type { Schema } from "../schemas";
import { useTenantId } from "../tenants";
import { CopyButton, FormError, PageTitle, QueryView, ScrollTable, StatusBadge, Time } from "../ui";

type Sidecar = Schema<"Sidecar">;
type CreatedSidecar = Schema<"CreatedSidecar">;

const sidecarsKey = (tenantId: string) => ["tenant", tenantId, "sidecars"];

export function SidecarsPage() {
  const tenantId = useTenantId();
  const sidecars = useQuery({
    queryKey: sidecarsKey(tenantId),
    queryFn: () => api<Page<Sidecar>>("GET", withQuery(tenantPath(tenantId, "sidecars"), { limit: 100 })),
    // Online/offline follows heartbeats (every few seconds), not anything done here.
    refetchInterval: 5000,
  });
  return (
    <>
      <PageTitle>Sidecars</PageTitle>
      <p>Sidecars are the hosts that run this tenant's agent instances; a launch needs one online.</p>
      <QueryView
        query={sidecars}
        label="Loading sidecars"
        isEmpty={(page) => page.data.length === 0}
        empty="No sidecar registered: instances cannot be launched until one is online. Register one below."
      >
        {(page) => (
          <ScrollTable label="Sidecars">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Load</th>
                  <th scope="col">Last heartbeat</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((s) => (
                  <SidecarRow key={s.id} tenantId={tenantId} sidecar={s} />
                ))}
              </tbody>
            </table>
          </ScrollTable>
        )}
      </QueryView>
      <RegisterSidecar tenantId={tenantId} />
    </>
  );
}

function SidecarRow({ tenantId, sidecar }: { tenantId: string; sidecar: Sidecar }) {
  const client = useQueryClient();
  const remove = useMutation({
    mutationFn: () => api<void>("DELETE", tenantPath(tenantId, `sidecars/${encodeURIComponent(sidecar.id)}`)),
    onSuccess: () => client.invalidateQueries({ queryKey: sidecarsKey(tenantId) }),
  });
  const nameId = `sidecar-${sidecar.id}`;
  return (
    <tr>
      <td>
        <span id={nameId}>{sidecar.name}</span>
        {sidecar.url && (
          <>
            <br />
            <small>{sidecar.url}</small>
          </>
        )}
      </td>
      <td>
        <StatusBadge status={sidecar.status} />
      </td>
      <td>
        {sidecar.liveInstances} of {sidecar.capacity} instances
      </td>
      <td>
        <Time at={sidecar.lastHeartbeat} />
      </td>
      <td>
        <button
          type="button"
          className="secondary outline compact"
          aria-describedby={nameId}
          aria-busy={remove.isPending}
          disabled={remove.isPending}
          onClick={() => remove.mutate()}
        >
          Remove
        </button>
        {/* 409 while it still runs live instances: say why, next to the button. */}
        {remove.isError && (
          <p role="alert" className="row-error">
            {remove.error.message}
          </p>
        )}
      </td>
    </tr>
  );
}

function RegisterSidecar({ tenantId }: { tenantId: string }) {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [capacity, setCapacity] = useState("16");
  const register = useMutation({
    mutationFn: (body: Schema<"CreateSidecar">) => api<CreatedSidecar>("POST", tenantPath(tenantId, "sidecars"), body),
    onSuccess: () => {
      setName("");
      return client.invalidateQueries({ queryKey: sidecarsKey(tenantId) });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    register.mutate({ name: name.trim(), capacity: Number(capacity) });
  };
  return (
    <section aria-labelledby="register-sidecar">
      <h2 id="register-sidecar">Register a sidecar</h2>
      <form onSubmit={submit}>
        <div className="grid">
          <label>
            Name
            <input
              required
              maxLength={100}
              value={name}
              placeholder="host-1"
              onChange={(e) => setName(e.target.value)}
            />
          </label>
          <label>
            Capacity
            <input
              type="number"
              required
              min={1}
              max={1000}
              step={1}
              value={capacity}
              aria-describedby="capacity-hint"
              onChange={(e) => setCapacity(e.target.value)}
            />
            <small id="capacity-hint">The most live instances it runs at once.</small>
          </label>
        </div>
        <FormError error={register.error} />
        <button type="submit" aria-busy={register.isPending} disabled={register.isPending}>
          Register sidecar
        </button>
      </form>
      <div aria-live="polite" role="status">
        {register.isSuccess && <SidecarSecret sidecar={register.data} onDone={() => register.reset()} />}
      </div>
    </section>
  );
}

/** The secret exists only in the registration's answer: show it with the command that uses it, once. */
function SidecarSecret({ sidecar, onDone }: { sidecar: CreatedSidecar; onDone: () => void }) {
  // The console is served by the hub, so this page's origin is the hub's URL.
  const command = `SIDECAR_SECRET=${sidecar.secret} HUB_URL=${window.location.origin} SIDECAR_STATE_DIR=.sidecar-state npm run sidecar`;
  return (
    <article className="secret-box">
      <h3>Sidecar "{sidecar.name}" registered</h3>
      <p>
        Its secret is shown <strong>only this once</strong>: copy it now.
      </p>
      <label>
        Secret
        <input readOnly value={sidecar.secret} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <p>
        Run the reference sidecar from a checkout of Agent Hub (keep <code>SIDECAR_STATE_DIR</code> across restarts: it
        holds the instances' keys):
      </p>
      <pre>
        <code>{command}</code>
      </pre>
      <div className="secret-actions">
        <CopyButton text={command} label="Copy command" />
        <button type="button" className="secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </article>
  );
}
