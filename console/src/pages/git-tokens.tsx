import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function GitTokensPage() {
  return <PageTitle>GitTokensPage</PageTitle>;
}
