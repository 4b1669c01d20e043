import { Link } from "react-router";
import { PageTitle } from "../ui";

export function NotFoundPage() {
  return (
    <>
      <PageTitle>Page not found</PageTitle>
      <p>
        Nothing lives at this address. <Link to="/">Back to your tenants</Link>
      </p>
    </>
  );
}
