import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function WalletsPage() {
  return <PageTitle>WalletsPage</PageTitle>;
}

// Placeholder until the screen is built.
export function WalletPage() {
  return <PageTitle>WalletPage</PageTitle>;
}
