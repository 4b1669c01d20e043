import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function UsagePage() {
  return <PageTitle>UsagePage</PageTitle>;
}
