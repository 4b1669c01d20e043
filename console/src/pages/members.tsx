import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function MembersPage() {
  return <PageTitle>MembersPage</PageTitle>;
}
