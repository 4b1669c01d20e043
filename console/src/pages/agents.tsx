import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function AgentsPage() {
  return <PageTitle>AgentsPage</PageTitle>;
}

// Placeholder until the screen is built.
export function AgentPage() {
  return <PageTitle>AgentPage</PageTitle>;
}
