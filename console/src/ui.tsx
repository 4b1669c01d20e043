/** The states every screen shows the same way: loading, error, empty; and a page heading. */
import type { UseQueryResult } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { ApiError } from "./api";

export function Loading({ label = "Loading" }: { label?: string }) {
  return (
    <p aria-busy="true" role="status">
      {label}…
    </p>
  );
}

export function ErrorNote({ error, retry }: { error: unknown; retry?: () => void }) {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <div role="alert" className="error-note">
      <strong>Something went wrong.</strong> {message}
      {code && code !== "network_error" && <small> ({code})</small>}
      {retry && (
        <button type="button" className="secondary outline" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** Renders a query's data, or its loading or error state; `isEmpty` picks the empty state. */
export function QueryView<T>({
  query,
  children,
  isEmpty,
  empty,
  label,
}: {
  query: UseQueryResult<T>;
  children: (data: T) => ReactNode;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  label?: string;
}) {
  if (query.isPending) return <Loading label={label} />;
  if (query.isError) return <ErrorNote error={query.error} retry={() => query.refetch()} />;
  if (isEmpty?.(query.data)) return <Empty>{empty ?? "Nothing here yet."}</Empty>;
  return <>{children(query.data)}</>;
}

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-title">
      <h1>{children}</h1>
      {actions && <div className="actions">{actions}</div>}
    </header>
  );
}

/** A timestamp as the reader's local date and time, with the exact value on hover. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span>—</span>;
  const d = new Date(at);
  return (
    <time dateTime={at} title={at}>
      {d.toLocaleString()}
    </time>
  );
}

/** An error from a form's submission, next to the form. */
export function FormError({ error }: { error: unknown }) {
  if (!error) return null;
  return <ErrorNote error={error} />;
}
