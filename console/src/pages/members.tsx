/** The tenant's principals (people and agent instances) with their status and roles, and inviting people. */
import { type UseQueryResult, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useId, useState } from "react";
import { Link } from "react-router";
import { api, type Page, tenantPath, withQuery } from "../api";
import type { Schema } from "../schemas";
import { useTenantId } from "../tenants";
import { FormError, PageTitle, QueryView, ScrollTable, StatusBadge, Time } from "../ui";

import "./members.css";

type Principal = Schema<"Principal">;
type Role = Schema<"Role">;
type Kind = "" | Principal["kind"];

const principalsKey = (tenantId: string) => ["tenant", tenantId, "principals"];

export function MembersPage() {
  const tenantId = useTenantId();
  const [kind, setKind] = useState<Kind>("");
  const kindId = useId();
  const principals = useQuery({
    queryKey: [...principalsKey(tenantId), { kind }],
    queryFn: () => api<Page<Principal>>("GET", withQuery(tenantPath(tenantId, "principals"), { limit: 100, kind })),
  });
  const roles = useRoles(tenantId);
  return (
    <>
      <PageTitle>Members</PageTitle>
      <p>
        People and agent instances of this tenant. What each may do comes from its roles: <strong>owner</strong>{" "}
        (everything), <strong>admin</strong> (read, create, manage and write everything) and <strong>member</strong>{" "}
        (read everything), plus any custom role.
      </p>
      <div className="members-filter">
        <label htmlFor={kindId}>Show</label>
        <select id={kindId} value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
          <option value="">People and agents</option>
          <option value="user">People</option>
          <option value="agent">Agents</option>
        </select>
      </div>
      <QueryView
        query={principals}
        label="Loading members"
        isEmpty={(page) => page.data.length === 0}
        empty="No member of this kind."
      >
        {(page) => (
          <>
            <ScrollTable label="Members">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Email</th>
                    <th scope="col">Status</th>
                    <th scope="col">Roles</th>
                    <th scope="col">Since</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((p) => (
                    <MemberRow key={p.id} tenantId={tenantId} principal={p} roles={roles} />
                  ))}
                </tbody>
              </table>
            </ScrollTable>
            {page.nextCursor && <p className="empty">Showing the first 100.</p>}
          </>
        )}
      </QueryView>
      <InviteMember tenantId={tenantId} />
    </>
  );
}

/** The tenant's roles, system roles included (for the per-member "Add role" select and the invitation). */
function useRoles(tenantId: string) {
  return useQuery({
    queryKey: ["tenant", tenantId, "roles"],
    queryFn: () => api<Page<Role>>("GET", withQuery(tenantPath(tenantId, "roles"), { limit: 100 })),
  });
}

const principalPath = (tenantId: string, principalId: string, rest = "") =>
  tenantPath(tenantId, `principals/${encodeURIComponent(principalId)}${rest ? `/${rest}` : ""}`);

/**
 * One principal with its own role and status changes: each row has its own mutations, so a refusal
 * (e.g. 409 for removing the last owner's role) shows in that row only.
 */
function MemberRow({
  tenantId,
  principal: p,
  roles,
}: {
  tenantId: string;
  principal: Principal;
  roles: UseQueryResult<Page<Role>>;
}) {
  const client = useQueryClient();
  const ids = { name: useId(), select: useId(), error: useId() };
  // Roles and status decide the caller's own access too: refresh the memberships with the list.
  const refresh = () =>
    Promise.all([
      client.invalidateQueries({ queryKey: principalsKey(tenantId) }),
      client.invalidateQueries({ queryKey: ["me", "principals"] }),
    ]);
  const removeRole = useMutation({
    mutationFn: (roleId: string) =>
      api<void>("DELETE", principalPath(tenantId, p.id, `roles/${encodeURIComponent(roleId)}`)),
    onSuccess: refresh,
  });
  const addRole = useMutation({
    mutationFn: (roleId: string) =>
      api<void>("POST", principalPath(tenantId, p.id, `roles/${encodeURIComponent(roleId)}`)),
    onSuccess: refresh,
  });
  const setStatus = useMutation({
    mutationFn: (status: Schema<"UpdatePrincipal">["status"]) =>
      api<Principal>("PATCH", principalPath(tenantId, p.id), { status }),
    onSuccess: refresh,
  });
  // Only the last attempted change's error matters; a new attempt clears the others.
  const mutations = [removeRole, addRole, setStatus];
  const start = (m: (typeof mutations)[number]) => {
    for (const other of mutations) if (other !== m) other.reset();
  };
  const error = removeRole.error ?? addRole.error ?? setStatus.error;
  const held = new Set(p.roles.map((r) => r.id));
  const addable = roles.data?.data.filter((r) => !held.has(r.id)) ?? [];
  // null until chosen: the first role the principal lacks.
  const [chosen, setChosen] = useState<string | null>(null);
  const roleId = chosen && addable.some((r) => r.id === chosen) ? chosen : (addable[0]?.id ?? "");
  const busy = removeRole.isPending || addRole.isPending || setStatus.isPending;
  // A user can be suspended and reactivated; an agent principal follows its instance's life.
  const toggle =
    p.kind !== "user"
      ? null
      : p.status === "active"
        ? ({ label: "Suspend", status: "suspended" } as const)
        : p.status === "suspended" || p.status === "deactivated"
          ? ({ label: "Reactivate", status: "active" } as const)
          : null;
  return (
    <tr>
      <td>
        {/* An agent principal is an instance's own identity: its refId is the instance. */}
        <span id={ids.name}>
          {p.kind === "agent" && p.refId.startsWith("ins_") ? (
            <Link to={`/t/${tenantId}/instances/${p.refId}`}>{p.displayName}</Link>
          ) : (
            p.displayName
          )}
        </span>
      </td>
      <td>{p.kind === "user" ? "person" : "agent"}</td>
      <td>{p.email ?? "—"}</td>
      <td>
        <div className="member-status">
          <StatusBadge status={p.status} />
          {toggle && (
            <button
              type="button"
              className="secondary outline compact"
              aria-describedby={ids.name}
              aria-busy={setStatus.isPending}
              disabled={busy}
              onClick={() => {
                start(setStatus);
                setStatus.mutate(toggle.status);
              }}
            >
              {toggle.label}
            </button>
          )}
        </div>
      </td>
      <td className="member-roles">
        {p.roles.length === 0 ? (
          <p className="empty">no role</p>
        ) : (
          <ul>
            {p.roles.map((r) => (
              <li key={r.id}>
                <span id={`${ids.name}-${r.id}`}>{r.name}</span>{" "}
                <button
                  type="button"
                  className="secondary outline compact"
                  aria-describedby={`${ids.name}-${r.id} ${ids.name}`}
                  aria-busy={removeRole.isPending && removeRole.variables === r.id}
                  disabled={busy}
                  onClick={() => {
                    start(removeRole);
                    removeRole.mutate(r.id);
                  }}
                >
                  Remove role
                </button>
              </li>
            ))}
          </ul>
        )}
        {addable.length > 0 && (
          <form
            className="add-role"
            onSubmit={(e) => {
              e.preventDefault();
              start(addRole);
              if (roleId) addRole.mutate(roleId);
            }}
          >
            <label htmlFor={ids.select}>
              Role to add<span className="visually-hidden"> for {p.displayName}</span>
            </label>
            <select id={ids.select} value={roleId} onChange={(e) => setChosen(e.target.value)}>
              {addable.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name}
                </option>
              ))}
            </select>
            <button
              type="submit"
              className="compact"
              aria-describedby={ids.name}
              aria-busy={addRole.isPending}
              disabled={busy}
            >
              Add role
            </button>
          </form>
        )}
        {roles.isError && <small>The roles could not be loaded: {roles.error.message}</small>}
        <FormError error={error} />
      </td>
      <td>
        <Time at={p.createdAt} />
      </td>
    </tr>
  );
}

function InviteMember({ tenantId }: { tenantId: string }) {
  const client = useQueryClient();
  const [email, setEmail] = useState("");
  // null until chosen: then the system "member" role (read everything), the least a member needs.
  const [chosenRole, setRoleId] = useState<string | null>(null);
  const roleSelectId = useId();
  const roles = useRoles(tenantId);
  const invite = useMutation({
    mutationFn: (body: Schema<"InviteMember">) => api<Principal>("POST", tenantPath(tenantId, "members/invite"), body),
    onSuccess: () => {
      setEmail("");
      return client.invalidateQueries({ queryKey: principalsKey(tenantId) });
    },
  });
  const roleId = chosenRole ?? roles.data?.data.find((r) => r.isSystem && r.name === "member")?.id ?? "";
  const submit = (e: FormEvent) => {
    e.preventDefault();
    invite.mutate({ email: email.trim(), ...(roleId ? { roleId } : {}) });
  };
  return (
    <section aria-labelledby="invite-member">
      <h2 id="invite-member">Invite a member</h2>
      <p>They must already have an Agent Hub account; they accept the invitation from their own home screen.</p>
      <form onSubmit={submit}>
        <div className="grid">
          <label>
            Email
            <input type="email" required maxLength={320} value={email} onChange={(e) => setEmail(e.target.value)} />
          </label>
          <div>
            <label htmlFor={roleSelectId}>Role</label>
            <select
              id={roleSelectId}
              value={roleId}
              aria-describedby={roles.isError ? `${roleSelectId}-error` : undefined}
              onChange={(e) => setRoleId(e.target.value)}
            >
              <option value="">No role</option>
              {roles.data?.data.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name}
                </option>
              ))}
            </select>
            {roles.isError && (
              <small id={`${roleSelectId}-error`}>The roles could not be loaded: {roles.error.message}</small>
            )}
          </div>
        </div>
        <FormError error={invite.error} />
        <div aria-live="polite" role="status">
          {invite.isSuccess && <p>Invited {invite.data.email ?? invite.data.displayName}.</p>}
        </div>
        <button type="submit" aria-busy={invite.isPending} disabled={invite.isPending}>
          Invite
        </button>
      </form>
    </section>
  );
}
