import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function ApprovalsPage() {
  return <PageTitle>ApprovalsPage</PageTitle>;
}
