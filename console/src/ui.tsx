/** The states every screen shows the same way: loading, error, empty; and a page heading. */
import type { UseQueryResult } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
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

/**
 * A table that scrolls sideways on its own on a narrow screen. A scrolling region must be reachable by
 * keyboard (axe `scrollable-region-focusable`), so it takes focus and is a region named for screen readers.
 */
export function ScrollTable({ label, children }: { label: string; children: ReactNode }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a keyboard user must be able to focus the region to scroll it.
    <section className="table-wrap" aria-label={`${label} table`} tabIndex={0}>
      {children}
    </section>
  );
}

/** The status as a word (never colour alone), tinted to be scanned quickly. */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`status-badge status-${status}`}>{status}</span>;
}

/** Copies a secret or a command, and says whether it worked. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const copy = () =>
    navigator.clipboard.writeText(text).then(
      () => setCopied("yes"),
      () => setCopied("no"),
    );
  return (
    <>
      <button type="button" className="secondary outline" onClick={copy}>
        {label}
      </button>
      <span aria-live="polite">
        {copied === "yes" ? " Copied." : copied === "no" ? " Copying was refused: select the text instead." : ""}
      </span>
    </>
  );
}

/** The next page of a paginated list (`useInfiniteQuery`), while there is one. */
export function LoadMore({
  query,
  label = "Load more",
}: {
  query: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown };
  label?: string;
}) {
  if (!query.hasNextPage) return null;
  return (
    <button
      type="button"
      className="secondary outline"
      aria-busy={query.isFetchingNextPage}
      disabled={query.isFetchingNextPage}
      onClick={() => query.fetchNextPage()}
    >
      {label}
    </button>
  );
}
