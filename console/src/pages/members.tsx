/** The tenant's principals (people and agent instances) with their status and roles, and inviting people. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
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
                    <tr key={p.id}>
                      <td>
                        {/* An agent principal is an instance's own identity: its refId is the instance. */}
                        {p.kind === "agent" && p.refId.startsWith("ins_") ? (
                          <Link to={`/t/${tenantId}/instances/${p.refId}`}>{p.displayName}</Link>
                        ) : (
                          p.displayName
                        )}
                      </td>
                      <td>{p.kind === "user" ? "person" : "agent"}</td>
                      <td>{p.email ?? "—"}</td>
                      <td>
                        <StatusBadge status={p.status} />
                      </td>
                      <td>{p.roles.map((r) => r.name).join(", ") || "no role"}</td>
                      <td>
                        <Time at={p.createdAt} />
                      </td>
                    </tr>
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

function InviteMember({ tenantId }: { tenantId: string }) {
  const client = useQueryClient();
  const [email, setEmail] = useState("");
  // null until chosen: then the system "member" role (read everything), the least a member needs.
  const [chosenRole, setRoleId] = useState<string | null>(null);
  const roleSelectId = useId();
  const roles = useQuery({
    queryKey: ["tenant", tenantId, "roles"],
    queryFn: () => api<Page<Role>>("GET", withQuery(tenantPath(tenantId, "roles"), { limit: 100 })),
  });
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
