/** Git tokens: the tenant's service tokens and the user's personal ones, minting (shown once) and revoking. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useId, useState } from "react";
import { api, type Page, tenantPath, withQuery } from "../api";
import type { Schema } from "../schemas";
import { useAgents } from "../tenant-lists";
import { useTenantId } from "../tenants";
import { CopyButton, FormError, PageTitle, QueryView, ScrollTable, StatusBadge, Time } from "../ui";

import "./git-tokens.css";

type Token = Schema<"GitTokenSummary">;
type Minted = Schema<"MintedGitToken">;
type Asset = Schema<"Asset">;
type Action = Schema<"MintGitToken">["actions"][number];
type Scope = "personal" | "tenant";

const tenantTokensKey = (tenantId: string) => ["tenant", tenantId, "git-tokens"];
const personalTokensKey = ["me", "git-tokens"];

/** The repositories a token can open, with the path git clones them from (docs/git.md). */
type Repository = { resource: string; label: string; clonePath: string };

function useRepositories(tenantId: string) {
  const assets = useQuery({
    queryKey: ["tenant", tenantId, "assets"],
    queryFn: () => api<Page<Asset>>("GET", withQuery(tenantPath(tenantId, "assets"), { limit: 100 })),
  });
  const agents = useAgents(tenantId);
  const assetRepos: Repository[] = (assets.data?.data ?? []).map((a) => ({
    resource: `asset:${a.id}`,
    label: `${a.displayName ?? a.name} (${a.kind})`,
    clonePath: a.cloneUrl,
  }));
  const stateRepos: Repository[] = (agents.data?.data ?? []).map((a) => ({
    resource: `agent-state:${a.id}`,
    label: `${a.name}: deploy tree (read only)`,
    clonePath: tenantPath(tenantId, `agents/definitions/${a.id}/state.git`),
  }));
  return { assets, agents, assetRepos, stateRepos, all: [...assetRepos, ...stateRepos] };
}

/** The API expands `can_read` and `can_push` into git's operations; say them the way they were asked for. */
function describeActions(actions: Token["actions"]): string {
  const set = new Set<string>(actions);
  const words: string[] = [];
  if (set.has("can_read") || (set.has("createPack") && set.has("resolveRef"))) words.push("read");
  else for (const a of ["createPack", "resolveRef"]) if (set.has(a)) words.push(a);
  if (set.has("can_push") || set.has("receivePack")) words.push("push");
  return words.join(", ") || "none";
}

function tokenState(t: Token): "revoked" | "expired" | "active" {
  if (t.revokedAt) return "revoked";
  return new Date(t.expiresAt).getTime() <= Date.now() ? "expired" : "active";
}

export function GitTokensPage() {
  const tenantId = useTenantId();
  const repos = useRepositories(tenantId);
  const tenantTokens = useQuery({
    queryKey: tenantTokensKey(tenantId),
    queryFn: () => api<Page<Token>>("GET", withQuery(tenantPath(tenantId, "git-tokens"), { limit: 100 })),
  });
  const personalTokens = useQuery({
    queryKey: personalTokensKey,
    queryFn: () => api<Page<Token>>("GET", withQuery("/api/me/git-tokens", { limit: 100 })),
  });
  const names = new Map(repos.all.map((r) => [r.resource, r.label]));
  return (
    <>
      <PageTitle>Git tokens</PageTitle>
      <p>
        A git token opens one repository (an asset, or an agent's state) to stock <code>git</code> over HTTP, for the
        refs and actions it names, until it expires.
      </p>
      <section aria-labelledby="tenant-tokens">
        <h2 id="tenant-tokens">Tokens of this tenant</h2>
        <p>Service tokens, and the personal tokens members made for this tenant's repositories.</p>
        <QueryView
          query={tenantTokens}
          label="Loading the tenant's tokens"
          isEmpty={(page) => page.data.length === 0}
          empty="No token for this tenant's repositories."
        >
          {(page) => (
            <TokenTable
              label="Tokens of this tenant"
              tokens={page.data}
              names={names}
              revokePath={(id) => tenantPath(tenantId, `git-tokens/${id}`)}
            />
          )}
        </QueryView>
      </section>
      <section aria-labelledby="personal-tokens">
        <h2 id="personal-tokens">Your personal tokens</h2>
        <p>Yours, for the repositories of every tenant you belong to.</p>
        <QueryView
          query={personalTokens}
          label="Loading your tokens"
          isEmpty={(page) => page.data.length === 0}
          empty="You have no personal token."
        >
          {(page) => (
            <TokenTable
              label="Your personal tokens"
              tokens={page.data}
              names={names}
              revokePath={(id) => `/api/me/git-tokens/${id}`}
            />
          )}
        </QueryView>
      </section>
      <CreateToken tenantId={tenantId} repos={repos} />
    </>
  );
}

function TokenTable({
  label,
  tokens,
  names,
  revokePath,
}: {
  label: string;
  tokens: Token[];
  names: Map<string, string>;
  revokePath: (id: string) => string;
}) {
  return (
    <ScrollTable label={label}>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Repository</th>
            <th scope="col">Refs</th>
            <th scope="col">Actions allowed</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <TokenRow
              key={t.id}
              token={t}
              repository={names.get(t.resource)}
              revokePath={revokePath(encodeURIComponent(t.id))}
            />
          ))}
        </tbody>
      </table>
    </ScrollTable>
  );
}

function TokenRow({ token, repository, revokePath }: { token: Token; repository?: string; revokePath: string }) {
  const client = useQueryClient();
  const revoke = useMutation({
    mutationFn: () => api<void>("DELETE", revokePath),
    // Either list may hold it (a tenant token is also its minter's): refresh both.
    onSuccess: () =>
      Promise.all([
        client.invalidateQueries({ queryKey: personalTokensKey }),
        client.invalidateQueries({ queryKey: ["tenant", token.tenantId ?? ""] }),
      ]),
  });
  const state = tokenState(token);
  const nameId = `token-${token.id}`;
  return (
    <tr>
      <td id={nameId}>
        {token.name}
        <br />
        <small>{token.kind === "svc" ? "service" : "personal"}</small>
      </td>
      <td>
        {repository ?? <code>{token.resource}</code>}
        {repository && (
          <>
            <br />
            <small className="token-resource">
              <code>{token.resource}</code>
            </small>
          </>
        )}
      </td>
      <td>
        <code>{token.refPattern}</code>
      </td>
      <td>{describeActions(token.actions)}</td>
      <td>
        <Time at={token.expiresAt} />
      </td>
      <td>
        <StatusBadge status={state} />
      </td>
      <td>
        {state !== "revoked" && (
          <button
            type="button"
            className="secondary outline compact"
            aria-describedby={nameId}
            aria-busy={revoke.isPending}
            disabled={revoke.isPending}
            onClick={() => revoke.mutate()}
          >
            Revoke
          </button>
        )}
        {revoke.isError && (
          <p role="alert" className="row-error">
            {revoke.error.message}
          </p>
        )}
      </td>
    </tr>
  );
}

/** `YYYY-MM-DD` of a date `days` from today, in the reader's zone (what a date input shows). */
function dayFromNow(days: number): string {
  const d = new Date(Date.now() + days * 86_400_000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function CreateToken({ tenantId, repos }: { tenantId: string; repos: ReturnType<typeof useRepositories> }) {
  const client = useQueryClient();
  const ids = useId();
  const [scope, setScope] = useState<Scope>("personal");
  const [name, setName] = useState("");
  const [resource, setResource] = useState("");
  const [refPattern, setRefPattern] = useState("refs/**");
  const [read, setRead] = useState(true);
  const [push, setPush] = useState(false);
  const [expires, setExpires] = useState(dayFromNow(30));
  const mint = useMutation({
    mutationFn: ({ scope, body }: { scope: Scope; body: Schema<"MintGitToken"> }) =>
      scope === "tenant"
        ? api<Minted>("POST", tenantPath(tenantId, "git-tokens"), body)
        : api<Minted>("POST", "/api/me/git-tokens", { ...body, tenantId }),
    onSuccess: () => {
      setName("");
      return Promise.all([
        client.invalidateQueries({ queryKey: personalTokensKey }),
        client.invalidateQueries({ queryKey: tenantTokensKey(tenantId) }),
      ]);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const actions: Action[] = [];
    if (read) actions.push("can_read");
    if (push) actions.push("can_push");
    // The token lasts to the end of the chosen day, in the reader's zone.
    const expiresAt = new Date(`${expires}T23:59:59`).toISOString();
    mint.mutate({ scope, body: { name: name.trim(), resource, refPattern: refPattern.trim(), actions, expiresAt } });
  };
  const minted = mint.data;
  const repo = repos.all.find((r) => r.resource === minted?.claims.resource);
  const loadError = repos.assets.error ?? repos.agents.error;
  return (
    <section aria-labelledby="create-token">
      <h2 id="create-token">Create a git token</h2>
      {loadError && <FormError error={loadError} />}
      <form onSubmit={submit}>
        <fieldset className="git-token-choices">
          <legend>Kind</legend>
          <label>
            <input type="radio" name="scope" checked={scope === "personal"} onChange={() => setScope("personal")} />
            Personal (acts as you)
          </label>
          <label>
            <input type="radio" name="scope" checked={scope === "tenant"} onChange={() => setScope("tenant")} />
            Tenant service token
          </label>
        </fieldset>
        <div className="grid">
          <label>
            Name
            <input
              required
              maxLength={100}
              value={name}
              placeholder="laptop"
              onChange={(e) => setName(e.target.value)}
            />
          </label>
          <div>
            <label htmlFor={`${ids}-repo`}>Repository</label>
            <select id={`${ids}-repo`} required value={resource} onChange={(e) => setResource(e.target.value)}>
              <option value="" disabled>
                Choose a repository…
              </option>
              {repos.assetRepos.length > 0 && (
                <optgroup label="Assets">
                  {repos.assetRepos.map((r) => (
                    <option key={r.resource} value={r.resource}>
                      {r.label}
                    </option>
                  ))}
                </optgroup>
              )}
              {repos.stateRepos.length > 0 && (
                <optgroup label="Agent state">
                  {repos.stateRepos.map((r) => (
                    <option key={r.resource} value={r.resource}>
                      {r.label}
                    </option>
                  ))}
                </optgroup>
              )}
            </select>
          </div>
        </div>
        <div className="grid">
          <label>
            Ref pattern
            <input
              required
              maxLength={256}
              value={refPattern}
              aria-describedby={`${ids}-ref-hint`}
              onChange={(e) => setRefPattern(e.target.value)}
            />
            <small id={`${ids}-ref-hint`}>
              <code>*</code> within a segment, <code>**</code> across: <code>refs/heads/*</code>, <code>refs/**</code>.
            </small>
          </label>
          <label>
            Expires on
            <input
              type="date"
              required
              min={dayFromNow(0)}
              value={expires}
              onChange={(e) => setExpires(e.target.value)}
            />
          </label>
        </div>
        <fieldset className="git-token-choices">
          <legend>Allowed</legend>
          <label>
            <input type="checkbox" checked={read} onChange={(e) => setRead(e.target.checked)} />
            Read (clone, fetch)
          </label>
          <label>
            <input type="checkbox" checked={push} onChange={(e) => setPush(e.target.checked)} />
            Push
          </label>
        </fieldset>
        <FormError error={mint.error} />
        <button type="submit" aria-busy={mint.isPending} disabled={mint.isPending}>
          Create token
        </button>
      </form>
      <div aria-live="polite" role="status">
        {minted && <MintedToken token={minted} clonePath={repo?.clonePath} onDone={() => mint.reset()} />}
      </div>
    </section>
  );
}

/** The secret exists only in the mint's answer: show it once, with the clone command that uses it. */
function MintedToken({ token, clonePath, onDone }: { token: Minted; clonePath?: string; onDone: () => void }) {
  const { protocol, host } = window.location;
  const clone = clonePath
    ? `git clone ${protocol}//git:${token.secret}@${host}${clonePath}`
    : `git clone ${protocol}//git:${token.secret}@${host}/<repository path>`;
  return (
    <article className="secret-box">
      <h3>Token "{token.name}" created</h3>
      <p>
        It is shown <strong>only this once</strong>: copy it now. Use it as the password (any user name), or send it as{" "}
        <code>Authorization: Bearer …</code>.
      </p>
      <label>
        Token
        <input readOnly value={token.secret} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <p>Clone with it:</p>
      <pre>
        <code>{clone}</code>
      </pre>
      <div className="secret-actions">
        <CopyButton text={clone} label="Copy command" />
        <button type="button" className="secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </article>
  );
}
