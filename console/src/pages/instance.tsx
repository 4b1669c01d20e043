import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function InstancePage() {
  return <PageTitle>InstancePage</PageTitle>;
}
