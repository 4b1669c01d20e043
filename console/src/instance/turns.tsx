/** The instance's turns (one per model call), newest first, each with its parts on demand. */

import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, withQuery } from "../api";
import { formatDecimal } from "../decimal";
import type { Schema } from "../schemas";
import { QueryView, ScrollTable, Time } from "../ui";
import { instanceKeys, instancePath } from "./keys";

type Turn = Schema<"Turn">;
type Part = Turn["parts"][number];

export function useTurns(tenantId: string, instanceId: string) {
  return useQuery({
    queryKey: instanceKeys.turns(tenantId, instanceId),
    queryFn: () =>
      api<Schema<"TurnPage">>("GET", withQuery(instancePath(tenantId, instanceId, "turns"), { limit: 50 })),
  });
}

export function duration(start: string, end: string | null | undefined): string {
  if (!end) return "running";
  const ms = new Date(end).getTime() - new Date(start).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function TurnsPanel({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  const turns = useTurns(tenantId, instanceId);
  return (
    <section aria-labelledby="turns-heading" className="ins-instance-panel">
      <h2 id="turns-heading">Turns</h2>
      <QueryView
        query={turns}
        label="Loading the turns"
        isEmpty={(page) => page.data.length === 0}
        empty="No turn yet: the agent has not answered anything."
      >
        {(page) => (
          <ScrollTable label="Turns">
            <table className="ins-turns">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Status</th>
                  <th scope="col">Model</th>
                  <th scope="col">Tokens in / out</th>
                  <th scope="col">Cost</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Trace</th>
                  <th scope="col">Parts</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((turn) => (
                  <TurnRow key={turn.id} tenantId={tenantId} turn={turn} />
                ))}
              </tbody>
            </table>
          </ScrollTable>
        )}
      </QueryView>
    </section>
  );
}

function TurnRow({ tenantId, turn }: { tenantId: string; turn: Turn }) {
  const extra = [
    turn.cacheReadTokens ? `${turn.cacheReadTokens} cache read` : "",
    turn.cacheWriteTokens ? `${turn.cacheWriteTokens} cache write` : "",
    turn.thinkingTokens ? `${turn.thinkingTokens} thinking` : "",
  ].filter(Boolean);
  return (
    <tr>
      <td>
        <Time at={turn.startedAt} />
      </td>
      <td>
        <span className={`ins-badge ins-badge-${turn.status}`}>{turn.status}</span>
      </td>
      <td>
        <code>{turn.model}</code>
      </td>
      <td>
        {turn.inputTokens} / {turn.outputTokens}
        {extra.length > 0 && <small className="ins-muted"> ({extra.join(", ")})</small>}
      </td>
      <td>{formatDecimal(turn.cost)}</td>
      <td>{duration(turn.startedAt, turn.endedAt)}</td>
      <td>
        {turn.traceId ? (
          // The visible words are the same on every row; the hidden id tells one trace's link from another's.
          // Positioned, so that absolutely placed hidden text stays inside the scrolling table on a phone.
          <Link to={`/t/${tenantId}/traces/${turn.traceId}`} title={turn.traceId}>
            View trace<span className="visually-hidden"> {turn.traceId}</span>
          </Link>
        ) : (
          "—"
        )}
      </td>
      <td>
        {turn.parts.length === 0 ? (
          "—"
        ) : (
          <details className="ins-parts">
            <summary>
              {turn.parts.length} part{turn.parts.length === 1 ? "" : "s"}
            </summary>
            <ol>
              {[...turn.parts]
                .sort((a, b) => a.ordinal - b.ordinal)
                .map((part) => (
                  <PartItem key={part.id} part={part} />
                ))}
            </ol>
          </details>
        )}
      </td>
    </tr>
  );
}

function PartItem({ part }: { part: Part }) {
  return (
    <li>
      <strong>{part.type}</strong>
      {part.content && <pre className="ins-part-content">{part.content}</pre>}
      {part.metadata && Object.keys(part.metadata).length > 0 && (
        <pre className="ins-part-meta">{JSON.stringify(part.metadata, null, 2)}</pre>
      )}
    </li>
  );
}
