/** Every screen of the console and its address under `/console/`. */
import { createBrowserRouter, Navigate } from "react-router";
import { SignedInLayout, SignedOutLayout } from "./layout";
import { AgentPage, AgentsPage } from "./pages/agents";
import { ApprovalsPage } from "./pages/approvals";
import { GitTokensPage } from "./pages/git-tokens";
import { InstancePage } from "./pages/instance";
import { InstancesPage } from "./pages/instances";
import { MembersPage } from "./pages/members";
import { NotFoundPage } from "./pages/not-found";
import { SidecarsPage } from "./pages/sidecars";
import { SignInPage, SignUpPage } from "./pages/sign-in";
import { TenantsPage } from "./pages/tenants";
import { TracePage } from "./pages/trace";
import { WalletPage, WalletsPage } from "./pages/wallets";

export const router = createBrowserRouter(
  [
    {
      element: <SignedOutLayout />,
      children: [
        { path: "/sign-in", element: <SignInPage /> },
        { path: "/sign-up", element: <SignUpPage /> },
      ],
    },
    {
      element: <SignedInLayout />,
      children: [
        { index: true, element: <TenantsPage /> },
        {
          path: "t/:tenantId",
          children: [
            { index: true, element: <Navigate to="agents" replace /> },
            { path: "agents", element: <AgentsPage /> },
            { path: "agents/:agentId", element: <AgentPage /> },
            { path: "instances", element: <InstancesPage /> },
            { path: "instances/:instanceId", element: <InstancePage /> },
            { path: "approvals", element: <ApprovalsPage /> },
            { path: "wallets", element: <WalletsPage /> },
            { path: "wallets/:walletId", element: <WalletPage /> },
            // The charts library is most of the app's weight: loaded when the screen is first opened.
            { path: "usage", lazy: async () => ({ Component: (await import("./pages/usage")).UsagePage }) },
            { path: "traces/:traceId", element: <TracePage /> },
            { path: "sidecars", element: <SidecarsPage /> },
            { path: "members", element: <MembersPage /> },
            { path: "git-tokens", element: <GitTokensPage /> },
          ],
        },
        { path: "*", element: <NotFoundPage /> },
      ],
    },
  ],
  { basename: "/console" },
);
