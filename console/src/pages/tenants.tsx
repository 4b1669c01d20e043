/** The home screen: the tenants the user belongs to, and a form to create one. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useNavigate } from "react-router";
import { api, type Page } from "../api";
import type { Schema } from "../schemas";
import { type Membership, useMemberships } from "../tenants";
import { FormError, PageTitle, QueryView } from "../ui";

/** What the API accepts as a slug: lower-case letters, digits and inner hyphens. */
function slugOf(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
}

/** Memberships the user has taken up; invitations are answered in their own section. */
const joined = (memberships: Membership[]) => memberships.filter((m) => m.status !== "invited");

export function TenantsPage() {
  const memberships = useMemberships();
  return (
    <>
      <PageTitle>Your tenants</PageTitle>
      <QueryView
        query={memberships}
        label="Loading your tenants"
        isEmpty={(page) => joined(page.data).length === 0}
        empty="You belong to no tenant yet. Create one below."
      >
        {(page) => (
          <ul className="cards">
            {joined(page.data).map((m) => (
              <li key={m.principalId}>
                <article>
                  <h2>
                    <Link to={`/t/${m.tenantId}/agents`}>{m.tenantName}</Link>
                  </h2>
                  <p>
                    <code>{m.tenantSlug}</code> · {m.roles.map((r) => r.name).join(", ") || "no role"} · {m.status}
                  </p>
                </article>
              </li>
            ))}
          </ul>
        )}
      </QueryView>
      <Invitations />
      <CreateTenant />
    </>
  );
}

/** Tenants that invited the user: accepting makes the membership active, declining removes it. */
function Invitations() {
  const client = useQueryClient();
  const invitations = useQuery({
    queryKey: ["me", "invitations"],
    queryFn: () => api<Page<Membership>>("GET", "/api/me/invitations?limit=100"),
    refetchInterval: 10_000,
  });
  const answer = useMutation({
    mutationFn: ({ principalId, verb }: { principalId: string; verb: "accept" | "decline" }) =>
      api("POST", `/api/me/invitations/${encodeURIComponent(principalId)}/${verb}`, {}),
    onSuccess: () => client.invalidateQueries({ queryKey: ["me"] }),
  });
  if (!invitations.data?.data.length && !invitations.isError) return null;
  return (
    <section aria-labelledby="invitations">
      <h2 id="invitations">Invitations</h2>
      <QueryView query={invitations} label="Loading your invitations">
        {(page) => (
          <ul className="cards">
            {page.data.map((m) => (
              <li key={m.principalId}>
                <article aria-label={`Invitation to ${m.tenantName}`}>
                  <p>
                    <strong>{m.tenantName}</strong> invited you as {m.roles.map((r) => r.name).join(", ") || "a member"}
                    .
                  </p>
                  <div className="grid">
                    <button
                      type="button"
                      disabled={answer.isPending}
                      onClick={() => answer.mutate({ principalId: m.principalId, verb: "accept" })}
                    >
                      Accept
                    </button>
                    <button
                      type="button"
                      className="secondary outline"
                      disabled={answer.isPending}
                      onClick={() => answer.mutate({ principalId: m.principalId, verb: "decline" })}
                    >
                      Decline
                    </button>
                  </div>
                </article>
              </li>
            ))}
          </ul>
        )}
      </QueryView>
      <FormError error={answer.error} />
    </section>
  );
}

function CreateTenant() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const create = useMutation({
    mutationFn: (body: { name: string; slug: string }) => api<Schema<"Tenant">>("POST", "/api/tenants", body),
    onSuccess: async (tenant) => {
      await client.invalidateQueries({ queryKey: ["me"] });
      navigate(`/t/${tenant.id}/agents`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ name, slug: slug || slugOf(name) });
  };
  return (
    <section aria-labelledby="create-tenant">
      <h2 id="create-tenant">Create a tenant</h2>
      <form onSubmit={submit}>
        <div className="grid">
          <label>
            Tenant name
            <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Slug
            <input
              pattern="[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
              placeholder={slugOf(name) || "acme"}
              aria-describedby="slug-hint"
              value={slug}
              onChange={(e) => setSlug(e.target.value)}
            />
            <small id="slug-hint">Lower-case letters, digits and hyphens; taken from the name when empty.</small>
          </label>
        </div>
        <FormError error={create.error} />
        <button type="submit" aria-busy={create.isPending} disabled={create.isPending}>
          Create tenant
        </button>
      </form>
    </section>
  );
}
