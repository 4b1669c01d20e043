import { PageTitle } from "../ui";

// Placeholder until the screen is built.
export function InstancesPage() {
  return <PageTitle>InstancesPage</PageTitle>;
}
