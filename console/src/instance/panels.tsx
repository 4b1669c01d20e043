/**
 * The instance's slower views, each folded in a <details> and fetched only once opened: the timeline
 * (rebuilt from its state repository), its state files, and its logs.
 */
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
import { api, tenantPath, withQuery } from "../api";
import type { Schema } from "../schemas";
import { Empty, ErrorNote, Loading, LoadMore, QueryView, ScrollTable, Time } from "../ui";
import { instanceKeys, instancePath } from "./keys";

/** A section whose body mounts (and so fetches) only when the reader opens it. */
function Folded({ id, title, summary, children }: { id: string; title: string; summary: string; children: ReactNode }) {
  const [open, setOpen] = useState(false);
  return (
    <section aria-labelledby={id} className="ins-instance-panel">
      <h2 id={id}>{title}</h2>
      <details onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary>{summary}</summary>
        {open && children}
      </details>
    </section>
  );
}

export function TimelinePanel({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  return (
    <Folded id="timeline-heading" title="Timeline" summary="Show the timeline">
      <Timeline tenantId={tenantId} instanceId={instanceId} />
    </Folded>
  );
}

function Timeline({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  const timeline = useQuery({
    queryKey: instanceKeys.timeline(tenantId, instanceId),
    queryFn: () => api<Schema<"Timeline">>("GET", instancePath(tenantId, instanceId, "timeline")),
  });
  return (
    <QueryView
      query={timeline}
      label="Loading the timeline"
      isEmpty={(t) => t.data.length === 0 && t.gaps.length === 0}
      empty="Nothing on the timeline yet."
    >
      {(t) => (
        <>
          {t.gaps.length > 0 && (
            <div className="error-note">
              <strong>Parts of the history could not be read:</strong>
              <ul>
                {t.gaps.map((g, i) => (
                  // Gaps have no id; their order is stable within one answer.
                  // biome-ignore lint/suspicious/noArrayIndexKey: see above
                  <li key={i}>
                    <code>{g.kind}</code>: {g.description}
                  </li>
                ))}
              </ul>
            </div>
          )}
          <ol className="ins-timeline">
            {t.data.map((item, i) => (
              <li key={item.turnId ?? item.mailId ?? item.messageId ?? `${item.kind}-${i}`}>
                <p className="ins-thread-meta">
                  <Time at={item.timestamp} /> ·{" "}
                  {item.kind === "mail" ? (
                    <strong>{item.direction === "out" ? "Mail from the agent" : "Mail to the agent"}</strong>
                  ) : (
                    <strong>Turn</strong>
                  )}
                  {item.status && <> · {item.status}</>}
                  {item.model && (
                    <>
                      {" "}
                      · <code>{item.model}</code>
                    </>
                  )}
                  {item.isError && <> · error</>} · <small>from {item.source}</small>
                  {item.cursor !== null && <small> · event {item.cursor}</small>}
                </p>
                {item.content && <p className="ins-thread-text">{item.content}</p>}
                {item.kind === "mail" && item.messageId && !item.content && (
                  <p className="ins-muted">
                    <code>{item.messageId}</code>
                  </p>
                )}
                {item.errors && item.errors.length > 0 && (
                  <ul>
                    {item.errors.map((e, j) => (
                      // biome-ignore lint/suspicious/noArrayIndexKey: errors have no id
                      <li key={j}>
                        {e.category}: {e.message}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ol>
        </>
      )}
    </QueryView>
  );
}

export function StateFilesPanel({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  return (
    <Folded id="state-heading" title="State files" summary="Browse the state files">
      <StateFiles tenantId={tenantId} instanceId={instanceId} />
    </Folded>
  );
}

/** `:agentId` of the data routes is the instance itself: its own state repository (docs/agent-state.md). */
function dataPath(tenantId: string, instanceId: string, rest = ""): string {
  return tenantPath(tenantId, `agents/${encodeURIComponent(instanceId)}/data${rest}`);
}

type FileEntry = Schema<"FileEntry">;
type FileNode = { entry: FileEntry; name: string; children: FileNode[] };

/** The listing is the whole tree, flat, with full paths: nest it so each folder holds its entries. */
function fileTree(entries: FileEntry[]): FileNode[] {
  const roots: FileNode[] = [];
  const dirs = new Map<string, FileNode>();
  for (const entry of entries) {
    const cut = entry.path.lastIndexOf("/");
    const node: FileNode = { entry, name: entry.path.slice(cut + 1), children: [] };
    if (entry.type === "directory") dirs.set(entry.path, node);
    const parent = cut > 0 ? dirs.get(entry.path.slice(0, cut)) : undefined;
    (parent ? parent.children : roots).push(node);
  }
  return roots;
}

function StateFiles({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  const [file, setFile] = useState<string | null>(null);
  const list = useInfiniteQuery({
    queryKey: [...instanceKeys.data(tenantId, instanceId), "list"],
    queryFn: ({ pageParam }) =>
      api<Schema<"FileEntryList">>("GET", withQuery(dataPath(tenantId, instanceId), { cursor: pageParam, limit: 100 })),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const entries = list.data?.pages.flatMap((p) => p.data) ?? [];
  if (list.isPending) return <Loading label="Loading the files" />;
  if (list.isError) return <ErrorNote error={list.error} retry={() => list.refetch()} />;
  if (entries.length === 0)
    return <Empty>This agent has no state files yet: its sidecar pushes them when the instance stops or syncs.</Empty>;
  return (
    <div className="ins-state-files">
      <FileList nodes={fileTree(entries)} selected={file} onSelect={setFile} />
      <LoadMore query={list} label="More files" />
      {file && <FileView tenantId={tenantId} instanceId={instanceId} path={file} />}
    </div>
  );
}

function FileList({
  nodes,
  selected,
  onSelect,
}: {
  nodes: FileNode[];
  selected: string | null;
  onSelect: (path: string) => void;
}) {
  return (
    <ul className="ins-files">
      {nodes.map((node) => (
        <li key={node.entry.path}>
          {node.entry.type === "directory" ? (
            <>
              <span className="ins-dir">{node.name}/</span>
              {node.children.length > 0 && <FileList nodes={node.children} selected={selected} onSelect={onSelect} />}
            </>
          ) : (
            <>
              <button
                type="button"
                className="ins-link-button"
                aria-pressed={selected === node.entry.path}
                title={node.entry.path}
                onClick={() => onSelect(node.entry.path)}
              >
                {node.name}
              </button>{" "}
              <small className="ins-muted">{node.entry.size ?? "?"} bytes</small>
            </>
          )}
        </li>
      ))}
    </ul>
  );
}

function FileView({ tenantId, instanceId, path }: { tenantId: string; instanceId: string; path: string }) {
  const content = useQuery({
    queryKey: [...instanceKeys.data(tenantId, instanceId), "file", path],
    queryFn: () =>
      api<Schema<"FileContent">>(
        "GET",
        dataPath(tenantId, instanceId, `/${path.split("/").map(encodeURIComponent).join("/")}`),
      ),
  });
  return (
    <figure className="ins-file-view">
      <figcaption>
        <code>{path}</code>
      </figcaption>
      {content.isPending ? (
        <Loading label="Loading the file" />
      ) : content.isError ? (
        <ErrorNote error={content.error} retry={() => content.refetch()} />
      ) : content.data.encoding === "base64" ? (
        <Empty>A binary file ({Math.floor((content.data.content.length * 3) / 4)} bytes); not shown.</Empty>
      ) : content.data.content === "" ? (
        <Empty>The file is empty.</Empty>
      ) : (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard
        <pre tabIndex={0}>{content.data.content}</pre>
      )}
    </figure>
  );
}

const LEVELS = ["debug", "info", "warn", "error"] as const;
type Level = (typeof LEVELS)[number];

export function LogsPanel({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  return (
    <Folded id="logs-heading" title="Logs" summary="Show the logs">
      <Logs tenantId={tenantId} instanceId={instanceId} />
    </Folded>
  );
}

function Logs({ tenantId, instanceId }: { tenantId: string; instanceId: string }) {
  const [level, setLevel] = useState<Level | "">("");
  const logs = useInfiniteQuery({
    queryKey: [...instanceKeys.logs(tenantId, instanceId), level],
    queryFn: ({ pageParam }) =>
      api<Schema<"LogPage">>(
        "GET",
        withQuery(instancePath(tenantId, instanceId, "logs"), { level, cursor: pageParam, limit: 100 }),
      ),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const rows = logs.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <>
      <label className="ins-level-filter">
        Level
        <select value={level} onChange={(e) => setLevel(e.target.value as Level | "")}>
          <option value="">All levels</option>
          {LEVELS.map((l) => (
            <option key={l} value={l}>
              {l} and above
            </option>
          ))}
        </select>
      </label>
      {logs.isPending ? (
        <Loading label="Loading the logs" />
      ) : logs.isError ? (
        <ErrorNote error={logs.error} retry={() => logs.refetch()} />
      ) : rows.length === 0 ? (
        <Empty>No log entry{level ? ` at ${level} or above` : ""}.</Empty>
      ) : (
        <>
          <ScrollTable label="Logs">
            <table className="ins-logs">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Level</th>
                  <th scope="col">Source</th>
                  <th scope="col">Message</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr key={row.id}>
                    <td>
                      <Time at={row.timestamp} />
                    </td>
                    <td>
                      <span className={`ins-badge ins-badge-${row.level}`}>{row.level}</span>
                    </td>
                    <td>{row.source}</td>
                    <td>
                      {row.message}
                      {row.metadata && Object.keys(row.metadata).length > 0 && (
                        <details>
                          <summary>Details</summary>
                          <pre>{JSON.stringify(row.metadata, null, 2)}</pre>
                        </details>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollTable>
          <LoadMore query={logs} label="Older entries" />
        </>
      )}
    </>
  );
}
