/** Agent definitions: the list and a Create form; one definition's details, versions, assets, instances. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, type ReactNode, useId, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, type Page, tenantPath, withQuery } from "../api";
import type { Schema } from "../schemas";
import { tenantListKeys, useAgents } from "../tenant-lists";
import { useTenantId } from "../tenants";
import { FormError, PageTitle, QueryView, ScrollTable, StatusBadge, Time } from "../ui";
import { InstanceTable, useInstances } from "./instances";
import "./agents.css";

type Agent = Schema<"Agent">;
type AgentVersion = Schema<"AgentVersion">;
type Attachment = Schema<"AssetAttachment">;
type Asset = Schema<"Asset">;
type Instance = Schema<"AgentInstance">;
type Model = Schema<"ModelInfo">;
type CredentialRequirement = Schema<"CredentialRequirement">;
type CreateAgent = Schema<"CreateAgent">;
type UpdateAgent = Schema<"UpdateAgent">;

const agentKey = (tenantId: string, agentId: string) => ["tenant", tenantId, "agent", agentId];
const definitionPath = (tenantId: string, agentId: string, rest = "") =>
  tenantPath(tenantId, `agents/definitions/${encodeURIComponent(agentId)}${rest ? `/${rest}` : ""}`);

/** `modelConfig.defaultModel` when it is a string (the field is a free-form object). */
function defaultModelOf(agent: Agent): string | undefined {
  const model = agent.modelConfig?.defaultModel;
  return typeof model === "string" ? model : undefined;
}

/**
 * An agent's credential requirements once its default model becomes `model`: a launch needs a credential
 * for the new model's provider, not the old one's. The tenant-sourced requirement of the old model's
 * provider is swapped for the new provider's; others stay. Undefined when nothing needs to change (the
 * model is not in the catalog, or its provider is already required).
 */
function requirementsForModel(agent: Agent, catalog: Model[], model: string): CredentialRequirement[] | undefined {
  const next = catalog.find((m) => m.id === model);
  const current = agent.credentialRequirements ?? [];
  if (!next || current.some((r) => r.providerName === next.providerName)) return undefined;
  const previous = catalog.find((m) => m.id === defaultModelOf(agent));
  const kept = current.filter((r) => !(r.source === "tenant" && r.providerName === previous?.providerName));
  return [...kept, { providerName: next.providerName, source: "tenant" }];
}

// ---------------------------------------------------------------------------------------------------
// The list

export function AgentsPage() {
  const tenantId = useTenantId();
  const agents = useAgents(tenantId);
  return (
    <>
      <PageTitle>Agents</PageTitle>
      <QueryView
        query={agents}
        label="Loading agents"
        isEmpty={(page) => page.data.length === 0}
        empty="No agent yet. Create one below."
      >
        {(page) => (
          <ScrollTable label="Agents">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Description</th>
                  <th scope="col">Model</th>
                  <th scope="col">Version</th>
                  <th scope="col">Status</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((a) => (
                  <tr key={a.id}>
                    <td>
                      <Link to={`/t/${tenantId}/agents/${a.id}`}>{a.name}</Link>
                    </td>
                    <td>{a.description ?? "—"}</td>
                    <td>{defaultModelOf(a) ? <code>{defaultModelOf(a)}</code> : "—"}</td>
                    <td>{a.currentVersion}</td>
                    <td>
                      <StatusBadge status={a.status} />
                    </td>
                    <td>
                      <Time at={a.updatedAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollTable>
        )}
      </QueryView>
      <CreateAgentForm tenantId={tenantId} />
    </>
  );
}

function CreateAgentForm({ tenantId }: { tenantId: string }) {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [systemPrompt, setSystemPrompt] = useState("");
  // null until the user types: the catalog's first model is then the default.
  const [typedModel, setModel] = useState<string | null>(null);
  const models = useQuery({
    queryKey: ["models", tenantId],
    queryFn: () => api<Page<Model>>("GET", withQuery("/api/models", { tenantId })),
  });
  const model = typedModel ?? models.data?.data[0]?.id ?? "";
  // A launch needs a credential requirement; a model of the catalog tells us its provider.
  const known = models.data?.data.find((m) => m.id === model.trim());
  const create = useMutation({
    mutationFn: (body: CreateAgent) => api<Agent>("POST", tenantPath(tenantId, "agents/definitions"), body),
    onSuccess: () => {
      setName("");
      setDescription("");
      setSystemPrompt("");
      setModel(null);
      return client.invalidateQueries({ queryKey: tenantListKeys.agents(tenantId) });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const defaultModel = model.trim();
    create.mutate({
      name: name.trim(),
      description: description.trim() || null,
      systemPrompt: systemPrompt.trim() || null,
      modelConfig: defaultModel ? { defaultModel } : null,
      credentialRequirements: known ? [{ providerName: known.providerName, source: "tenant" }] : null,
    });
  };
  return (
    <section aria-labelledby="create-agent">
      <h2 id="create-agent">Create an agent</h2>
      <form onSubmit={submit}>
        <div className="grid">
          <label>
            Name
            <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Default model
            <input
              list="agent-models"
              value={model}
              onChange={(e) => setModel(e.target.value)}
              aria-describedby="model-hint"
              placeholder="gpt-4o-mini"
            />
            <datalist id="agent-models">
              {models.data?.data.map((m) => (
                <option key={`${m.providerId}/${m.id}`} value={m.id}>
                  {m.name} ({m.providerName})
                </option>
              ))}
            </datalist>
            <small id="model-hint">
              {models.isError
                ? "The model catalog could not be loaded; type the model's id."
                : known
                  ? `Calls go through the tenant's "${known.providerName}" provider.`
                  : "A model outside the tenant's catalog needs a credential requirement (set through the API) to launch."}
            </small>
          </label>
        </div>
        <label>
          Description
          <input maxLength={2000} value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        <label>
          System prompt
          <textarea
            rows={4}
            maxLength={200000}
            value={systemPrompt}
            onChange={(e) => setSystemPrompt(e.target.value)}
            aria-describedby="prompt-hint"
          />
          <small id="prompt-hint">The agent's instructions; needed to launch it.</small>
        </label>
        <FormError error={create.error} />
        <div aria-live="polite" role="status">
          {create.isSuccess && (
            <p>
              Created <Link to={`/t/${tenantId}/agents/${create.data.id}`}>{create.data.name}</Link>.
            </p>
          )}
        </div>
        <button type="submit" aria-busy={create.isPending} disabled={create.isPending}>
          Create agent
        </button>
      </form>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------------
// One definition

export function AgentPage() {
  const tenantId = useTenantId();
  const { agentId = "" } = useParams();
  const agent = useQuery({
    queryKey: agentKey(tenantId, agentId),
    queryFn: () => api<Agent>("GET", definitionPath(tenantId, agentId)),
  });
  return (
    <>
      <p className="back-link">
        <Link to={`/t/${tenantId}/agents`}>← Agents</Link>
      </p>
      {agent.isSuccess ? (
        <AgentView tenantId={tenantId} agent={agent.data} />
      ) : (
        // Loading or failed: still a page with its heading.
        <>
          <PageTitle>Agent</PageTitle>
          <QueryView query={agent} label="Loading the agent">
            {() => null}
          </QueryView>
        </>
      )}
    </>
  );
}

function AgentView({ tenantId, agent }: { tenantId: string; agent: Agent }) {
  const client = useQueryClient();
  const navigate = useNavigate();
  const launch = useMutation({
    mutationFn: () => api<Instance>("POST", tenantPath(tenantId, "agents/instances"), { agentId: agent.id }),
    onSuccess: async (instance) => {
      await client.invalidateQueries({ queryKey: ["tenant", tenantId] });
      navigate(`/t/${tenantId}/instances/${instance.id}`);
    },
  });
  return (
    <>
      <PageTitle
        actions={
          <button
            type="button"
            aria-busy={launch.isPending}
            disabled={launch.isPending || agent.status === "stopped"}
            onClick={() => launch.mutate()}
          >
            Launch
          </button>
        }
      >
        {agent.name}
      </PageTitle>
      {/* A launch waits for a sidecar to start the instance (up to 30 s); say so while it does. */}
      <div aria-live="polite" role="status">
        {launch.isPending && <p aria-busy="true">Launching — waiting for a sidecar to start the instance…</p>}
      </div>
      {launch.isError && (
        <div className="launch-error">
          <FormError error={launch.error} />
        </div>
      )}
      {agent.status === "stopped" && <p className="empty">This definition is stopped: it cannot be launched.</p>}
      <AgentDetails agent={agent} />
      <EditAgent tenantId={tenantId} agent={agent} />
      <Versions tenantId={tenantId} agent={agent} />
      <Assets tenantId={tenantId} agentId={agent.id} />
      <AgentInstances tenantId={tenantId} agentId={agent.id} />
    </>
  );
}

function AgentDetails({ agent }: { agent: Agent }) {
  const model = defaultModelOf(agent);
  return (
    <section aria-labelledby="agent-details">
      <h2 id="agent-details">Details</h2>
      <dl className="details">
        <dt>Id</dt>
        <dd>
          <code>{agent.id}</code>
        </dd>
        <dt>Status</dt>
        <dd>
          <StatusBadge status={agent.status} />
        </dd>
        <dt>Description</dt>
        <dd>{agent.description ?? "—"}</dd>
        <dt>Default model</dt>
        <dd>{model ? <code>{model}</code> : "— (needed to launch)"}</dd>
        <dt>Credentials</dt>
        <dd>
          {agent.credentialRequirements?.length
            ? agent.credentialRequirements.map((c) => `${c.providerName} (${c.source})`).join(", ")
            : "— (at least one is needed to launch)"}
        </dd>
        <dt>Roles</dt>
        <dd>{agent.roles.map((r) => r.name).join(", ") || "—"}</dd>
        <dt>Current version</dt>
        <dd>{agent.currentVersion}</dd>
        <dt>Created</dt>
        <dd>
          <Time at={agent.createdAt} />
        </dd>
        <dt>Updated</dt>
        <dd>
          <Time at={agent.updatedAt} />
        </dd>
      </dl>
      <details>
        <summary>System prompt</summary>
        {agent.systemPrompt ? <pre className="prompt">{agent.systemPrompt}</pre> : <p>— (needed to launch)</p>}
      </details>
    </section>
  );
}

/**
 * Editing records a new version. The mutation lives here so its outcome survives the form's reset:
 * the fields are keyed by the current version, so a save or a rollback re-fills them from the server.
 */
function EditAgent({ tenantId, agent }: { tenantId: string; agent: Agent }) {
  const client = useQueryClient();
  const save = useMutation({
    mutationFn: (body: UpdateAgent) => api<Agent>("PATCH", definitionPath(tenantId, agent.id), body),
    onSuccess: (saved) => {
      client.setQueryData(agentKey(tenantId, agent.id), saved);
      // The agent's key prefixes its versions: the Versions table shows the new current one.
      return Promise.all([
        client.invalidateQueries({ queryKey: agentKey(tenantId, agent.id) }),
        client.invalidateQueries({ queryKey: tenantListKeys.agents(tenantId) }),
      ]);
    },
  });
  // A submit with no change sends nothing (every PATCH records a version) and says so.
  const [unchanged, setUnchanged] = useState(false);
  const submit = (body: UpdateAgent) => {
    const nothing = Object.keys(body).length === 0;
    setUnchanged(nothing);
    if (nothing) save.reset();
    else save.mutate(body);
  };
  // Only the outcome of the last save while it is still the current version (a rollback makes it stale).
  const saved = save.isSuccess && save.data.currentVersion === agent.currentVersion ? save.data : undefined;
  return (
    <section aria-labelledby="edit-agent">
      <h2 id="edit-agent">Edit agent</h2>
      <EditAgentForm
        key={agent.currentVersion}
        tenantId={tenantId}
        agent={agent}
        pending={save.isPending}
        onSave={submit}
      >
        <FormError error={save.error} />
        <div aria-live="polite" role="status">
          {saved && <p>Saved as version {saved.currentVersion}.</p>}
          {unchanged && <p>Nothing changed: no new version was recorded.</p>}
        </div>
      </EditAgentForm>
    </section>
  );
}

function EditAgentForm({
  tenantId,
  agent,
  pending,
  onSave,
  children,
}: {
  tenantId: string;
  agent: Agent;
  pending: boolean;
  /** Called with only the changed fields (possibly none). */
  onSave: (body: UpdateAgent) => void;
  children: ReactNode;
}) {
  const ids = { models: useId(), modelHint: useId() };
  const [name, setName] = useState(agent.name);
  const [description, setDescription] = useState(agent.description ?? "");
  const [systemPrompt, setSystemPrompt] = useState(agent.systemPrompt ?? "");
  const [model, setModel] = useState(defaultModelOf(agent) ?? "");
  const models = useQuery({
    queryKey: ["models", tenantId],
    queryFn: () => api<Page<Model>>("GET", withQuery("/api/models", { tenantId })),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    // Every PATCH records a version, so only what the user changed is sent.
    const body: UpdateAgent = {};
    // An empty name goes to the API as "", which answers with its own validation message.
    if (name.trim() !== agent.name) body.name = name.trim();
    if (description.trim() !== (agent.description ?? "")) body.description = description.trim() || null;
    // The prompt is compared as typed: trimming it would count trailing blank lines as an edit.
    if (systemPrompt !== (agent.systemPrompt ?? "")) body.systemPrompt = systemPrompt.trim() ? systemPrompt : null;
    if (model.trim() !== (defaultModelOf(agent) ?? "")) {
      // modelConfig is replaced whole: keep its other keys (temperature…) as they are.
      const { defaultModel: _old, ...rest } = agent.modelConfig ?? {};
      body.modelConfig = model.trim() ? { ...rest, defaultModel: model.trim() } : rest;
      const requirements = requirementsForModel(agent, models.data?.data ?? [], model.trim());
      if (requirements) body.credentialRequirements = requirements;
    }
    onSave(body);
  };
  return (
    <form onSubmit={submit}>
      <div className="grid">
        <label>
          Name
          {/* Not `required`: an empty name reaches the API, whose message shows below the form. */}
          <input maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Default model
          <input
            list={ids.models}
            value={model}
            onChange={(e) => setModel(e.target.value)}
            aria-describedby={ids.modelHint}
          />
          <datalist id={ids.models}>
            {models.data?.data.map((m) => (
              <option key={`${m.providerId}/${m.id}`} value={m.id}>
                {m.name} ({m.providerName})
              </option>
            ))}
          </datalist>
          <small id={ids.modelHint}>Stored as the definition's modelConfig.defaultModel; needed to launch.</small>
        </label>
      </div>
      <label>
        Description
        <input maxLength={2000} value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <label>
        System prompt
        <textarea rows={6} maxLength={200000} value={systemPrompt} onChange={(e) => setSystemPrompt(e.target.value)} />
      </label>
      {children}
      <button type="submit" aria-busy={pending} disabled={pending}>
        Save changes
      </button>
    </form>
  );
}

function Versions({ tenantId, agent }: { tenantId: string; agent: Agent }) {
  const client = useQueryClient();
  const versions = useQuery({
    queryKey: [...agentKey(tenantId, agent.id), "versions"],
    queryFn: () =>
      api<Page<AgentVersion>>("GET", withQuery(definitionPath(tenantId, agent.id, "versions"), { limit: 100 })),
  });
  const rollback = useMutation({
    mutationFn: (version: string) => api<Agent>("POST", definitionPath(tenantId, agent.id, "rollback"), { version }),
    onSuccess: () =>
      Promise.all([
        client.invalidateQueries({ queryKey: agentKey(tenantId, agent.id) }),
        client.invalidateQueries({ queryKey: tenantListKeys.agents(tenantId) }),
      ]),
  });
  return (
    <section aria-labelledby="agent-versions">
      <h2 id="agent-versions">Versions</h2>
      <QueryView
        query={versions}
        label="Loading versions"
        isEmpty={(page) => page.data.length === 0}
        empty="No version recorded."
      >
        {(page) => (
          <ScrollTable label="Versions">
            <table>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((v) => (
                  <tr key={v.id}>
                    <td>
                      <span id={`version-${v.id}`}>Version {v.version}</span>
                      {v.version === agent.currentVersion && <strong> (current)</strong>}
                    </td>
                    <td>
                      <StatusBadge status={v.status} />
                    </td>
                    <td>
                      <Time at={v.createdAt} />
                    </td>
                    <td>
                      {v.version !== agent.currentVersion && (
                        <button
                          type="button"
                          className="secondary outline compact"
                          aria-describedby={`version-${v.id}`}
                          aria-busy={rollback.isPending && rollback.variables === v.version}
                          disabled={rollback.isPending}
                          onClick={() => rollback.mutate(v.version)}
                        >
                          Roll back
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollTable>
        )}
      </QueryView>
      <FormError error={rollback.error} />
      <div aria-live="polite" role="status">
        {rollback.isSuccess && <p>Rolled back to version {rollback.data.currentVersion}.</p>}
      </div>
    </section>
  );
}

function Assets({ tenantId, agentId }: { tenantId: string; agentId: string }) {
  const client = useQueryClient();
  const key = [...agentKey(tenantId, agentId), "assets"];
  const attached = useQuery({
    queryKey: key,
    queryFn: () => api<{ data: Attachment[] }>("GET", definitionPath(tenantId, agentId, "assets")),
  });
  const detach = useMutation({
    mutationFn: (assetId: string) =>
      api<void>("DELETE", definitionPath(tenantId, agentId, `assets/${encodeURIComponent(assetId)}`)),
    onSuccess: () => client.invalidateQueries({ queryKey: key }),
  });
  return (
    <section>
      <h2 id="agent-assets">Assets</h2>
      <QueryView
        query={attached}
        label="Loading attached assets"
        isEmpty={(page) => page.data.length === 0}
        empty="No asset attached."
      >
        {(page) => (
          <ScrollTable label="Attached assets">
            <table>
              <thead>
                <tr>
                  <th scope="col">Asset</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Ref</th>
                  <th scope="col">Access</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((a) => (
                  <tr key={a.id}>
                    <td id={`attachment-${a.id}`}>{a.asset.displayName ?? a.asset.name}</td>
                    <td>{a.asset.kind}</td>
                    <td>
                      <code>{a.ref}</code>
                    </td>
                    <td>{a.accessMode}</td>
                    <td>
                      <button
                        type="button"
                        className="secondary outline compact"
                        aria-describedby={`attachment-${a.id}`}
                        aria-busy={detach.isPending && detach.variables === a.assetId}
                        disabled={detach.isPending}
                        onClick={() => detach.mutate(a.assetId)}
                      >
                        Detach
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollTable>
        )}
      </QueryView>
      <FormError error={detach.error} />
      <AttachForm tenantId={tenantId} agentId={agentId} attached={attached.data?.data ?? []} />
    </section>
  );
}

function AttachForm({ tenantId, agentId, attached }: { tenantId: string; agentId: string; attached: Attachment[] }) {
  const client = useQueryClient();
  const [assetId, setAssetId] = useState("");
  const [ref, setRef] = useState("");
  const [accessMode, setAccessMode] = useState<Attachment["accessMode"]>("read-only");
  const assets = useQuery({
    queryKey: ["tenant", tenantId, "assets"],
    queryFn: () => api<Page<Asset>>("GET", withQuery(tenantPath(tenantId, "assets"), { limit: 100 })),
  });
  const attach = useMutation({
    mutationFn: (body: Schema<"AttachAsset">) =>
      api<Attachment>("POST", definitionPath(tenantId, agentId, "assets"), body),
    onSuccess: () => {
      setAssetId("");
      setRef("");
      return client.invalidateQueries({ queryKey: [...agentKey(tenantId, agentId), "assets"] });
    },
  });
  const idBase = useId();
  // Selects get a plain <label for>: a wrapping label would add every option to the accessible name.
  const ids = { asset: `${idBase}-asset`, access: `${idBase}-access` };
  const taken = new Set(attached.map((a) => a.assetId));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    attach.mutate({ assetId, accessMode, ...(ref.trim() ? { ref: ref.trim() } : {}) });
  };
  return (
    <>
      <h3>Attach an asset</h3>
      <QueryView
        query={assets}
        label="Loading the tenant's assets"
        isEmpty={(page) => page.data.length === 0}
        empty="The tenant has no asset to attach (create skills and repositories through the API, docs/git.md)."
      >
        {(page) => (
          <form onSubmit={submit}>
            <div className="grid">
              <div>
                <label htmlFor={ids.asset}>Asset</label>
                <select id={ids.asset} required value={assetId} onChange={(e) => setAssetId(e.target.value)}>
                  <option value="" disabled>
                    Choose an asset…
                  </option>
                  {page.data.map((a) => (
                    <option key={a.id} value={a.id} disabled={taken.has(a.id)}>
                      {a.displayName ?? a.name} ({a.kind}){taken.has(a.id) ? " — attached" : ""}
                    </option>
                  ))}
                </select>
              </div>
              <label>
                Ref
                <input
                  value={ref}
                  placeholder="refs/heads/main"
                  pattern="refs/[A-Za-z0-9._/\-]+"
                  onChange={(e) => setRef(e.target.value)}
                />
              </label>
              <div>
                <label htmlFor={ids.access}>Access</label>
                <select
                  id={ids.access}
                  value={accessMode}
                  onChange={(e) => setAccessMode(e.target.value as Attachment["accessMode"])}
                >
                  <option value="read-only">read-only</option>
                  <option value="read-write">read-write</option>
                </select>
              </div>
            </div>
            <FormError error={attach.error} />
            <button type="submit" aria-busy={attach.isPending} disabled={attach.isPending}>
              Attach
            </button>
          </form>
        )}
      </QueryView>
    </>
  );
}

function AgentInstances({ tenantId, agentId }: { tenantId: string; agentId: string }) {
  const instances = useInstances(tenantId, agentId);
  return (
    <section aria-labelledby="agent-instances">
      <h2 id="agent-instances">Instances</h2>
      <QueryView
        query={instances}
        label="Loading instances"
        isEmpty={(page) => page.data.length === 0}
        empty="No instance of this agent yet. Launch one with the button at the top."
      >
        {(page) => (
          <InstanceTable tenantId={tenantId} instances={page.data} more={page.nextCursor !== null} showAgent={false} />
        )}
      </QueryView>
    </section>
  );
}
