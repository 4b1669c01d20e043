/** The frame of every signed-in screen: a skip link, the header with the tenant's sections, the page. */
import { Link, Navigate, NavLink, Outlet, useLocation, useNavigate, useParams } from "react-router";
import { useMe, useSignOut } from "./session";
import { usePendingApprovals } from "./tenant-lists";
import { useMemberships } from "./tenants";
import { ErrorNote, Loading } from "./ui";

const sections: [path: string, label: string][] = [
  ["agents", "Agents"],
  ["instances", "Instances"],
  ["approvals", "Approvals"],
  ["wallets", "Wallets"],
  ["usage", "Usage"],
  ["sidecars", "Sidecars"],
  ["members", "Members"],
  ["git-tokens", "Git tokens"],
];

/** How many approvals wait in the tenant, beside its nav link, so nobody has to go and look. */
function PendingCount({ tenantId }: { tenantId: string }) {
  const pending = usePendingApprovals(tenantId);
  const n = pending.data?.data.length ?? 0;
  if (n === 0) return null;
  return <span className="badge"> {n === 100 ? "100+" : n} pending</span>;
}

/**
 * Sign-in and sign-up: someone already signed in goes to their tenants instead. If the session cannot be
 * checked the forms still show: signing in is how to find out.
 */
export function SignedOutLayout() {
  const me = useMe();
  if (me.isPending) return <Loading label="Checking your session" />;
  if (me.data) return <Navigate to="/" replace />;
  return <Outlet />;
}

export function SignedInLayout() {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading label="Checking your session" />;
  if (me.isError) return <ErrorNote error={me.error} retry={() => me.refetch()} />;
  if (!me.data) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header name={me.data.name} />
      <main id="main" className="container">
        <Outlet />
      </main>
    </>
  );
}

function Header({ name }: { name: string }) {
  const { tenantId } = useParams();
  const memberships = useMemberships();
  const signOut = useSignOut();
  const navigate = useNavigate();
  const tenant = memberships.data?.data.find((m) => m.tenantId === tenantId);
  return (
    <header className="container site-header">
      <nav aria-label="Main">
        <ul>
          <li>
            <Link to="/" className="brand">
              <strong>Agent Hub</strong>
            </Link>
          </li>
          {tenant && (
            <li>
              <Link to="/">{tenant.tenantName}</Link>
            </li>
          )}
        </ul>
        <ul>
          <li>
            <span className="who">{name}</span>
          </li>
          <li>
            <button
              type="button"
              className="secondary outline"
              onClick={() => signOut.mutate(undefined, { onSuccess: () => navigate("/sign-in") })}
            >
              Sign out
            </button>
          </li>
        </ul>
      </nav>
      {tenantId && (
        <nav aria-label="Tenant" className="tenant-nav">
          <ul>
            {sections.map(([path, label]) => (
              <li key={path}>
                <NavLink to={`/t/${tenantId}/${path}`}>
                  {label}
                  {path === "approvals" && <PendingCount tenantId={tenantId} />}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
      )}
    </header>
  );
}
