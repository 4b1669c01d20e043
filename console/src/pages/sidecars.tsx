import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function SidecarsPage() {
  return <PageTitle>SidecarsPage</PageTitle>;
}
