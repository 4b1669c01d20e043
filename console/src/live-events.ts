/**
 * An instance's live event stream (docs/events.md) as a React hook: the browser's `EventSource` with the
 * session cookie, resumed without a gap or a repeat when the connection drops.
 *
 * - While `EventSource` retries by itself it resends `Last-Event-ID`, so nothing is lost.
 * - When it gives up (`readyState` CLOSED: an HTTP error, a proxy restart, a long offline spell), we open
 *   a new one from the last id we saw with `?cursor=` (EventSource cannot set the header on a new object;
 *   the hub reads `Last-Event-ID` first, then `?cursor=`). Before that, a probe tells a stream that will
 *   never come back (the instance stopped: 410, or access lost) from one worth retrying.
 * - Ids only grow, so an event whose id is not above the last one seen is a duplicate and is dropped.
 */
import { type QueryClient, type QueryKey, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

/** One message of the stream: `id` is the instance's sequence number (null for `cursor_expired`). */
export type LiveEvent = {
  id: number | null;
  type: string;
  data: Record<string, unknown>;
  /** A client-side key, unique even for events without an id. */
  key: string;
};

export type LiveState = "live" | "reconnecting" | "offline";

export type LiveEventsOptions = {
  /** The cursor of the first connection: events after it are replayed (0 = everything still kept). */
  from?: number | null;
  /** How many events to keep (older ones are dropped from the list, not from the stream). */
  max?: number;
  /** Called once for every new event, in order, outside React's render. */
  onEvent?: (event: LiveEvent) => void;
};

export type LiveEvents = {
  events: LiveEvent[];
  state: LiveState;
  /** The last event id received, to show or to resume from. */
  lastId: number | null;
  /** The stream ended for good (the instance stopped, or access was lost). */
  ended: boolean;
};

const MAX_BACKOFF_MS = 30_000;
/** Many tokens can arrive in one chunk: render them together instead of once per event. */
const FLUSH_MS = 50;

export function useLiveEvents(url: string | null, options: LiveEventsOptions = {}): LiveEvents {
  const { from = null, max = 500 } = options;
  const onEvent = useRef(options.onEvent);
  onEvent.current = options.onEvent;
  const [events, setEvents] = useState<LiveEvent[]>([]);
  const [state, setState] = useState<LiveState>("reconnecting");
  const [lastId, setLastId] = useState<number | null>(null);
  const [ended, setEnded] = useState(false);

  useEffect(() => {
    if (!url) {
      setState("offline");
      return;
    }
    let last: number | null = null;
    let source: EventSource | null = null;
    let probe: AbortController | null = null;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let backoff = 1_000;
    let stopped = false;
    let counter = 0;
    let pending: LiveEvent[] = [];
    setEvents([]);
    setEnded(false);
    setLastId(null);
    setState("reconnecting");

    const flush = () => {
      flushTimer = undefined;
      const batch = pending;
      pending = [];
      if (batch.length === 0) return;
      setEvents((old) => {
        const next = old.concat(batch);
        return next.length > max ? next.slice(next.length - max) : next;
      });
      setLastId(last);
    };

    const receive = (message: MessageEvent<string>) => {
      let parsed: { type?: unknown; data?: unknown };
      try {
        parsed = JSON.parse(message.data) as typeof parsed;
      } catch {
        return;
      }
      // `lastEventId` stays set on a message without an `id:` line (the spec keeps the previous one), so
      // only a message whose own `seq` matches it counts as numbered.
      const id = /^\d+$/.test(message.lastEventId) ? Number(message.lastEventId) : null;
      const ownId = id !== null && (parsed as { seq?: unknown }).seq === id ? id : null;
      if (ownId !== null) {
        if (last !== null && ownId <= last) return; // a duplicate of what we already have
        last = ownId;
      }
      const event: LiveEvent = {
        id: ownId,
        type: typeof parsed.type === "string" ? parsed.type : "unknown",
        data: parsed.data && typeof parsed.data === "object" ? (parsed.data as Record<string, unknown>) : {},
        key: ownId !== null ? String(ownId) : `x${counter++}`,
      };
      pending.push(event);
      onEvent.current?.(event);
      flushTimer ??= setTimeout(flush, FLUSH_MS);
      if (event.type === "session.ended") finish();
    };

    /** The instance stopped or we may no longer read it: no point retrying. */
    const finish = () => {
      stopped = true;
      source?.close();
      source = null;
      setEnded(true);
      setState("offline");
    };

    const open = () => {
      if (stopped) return;
      const target = last === null ? (from === null ? url : withCursor(url, from)) : withCursor(url, last);
      const es = new EventSource(target, { withCredentials: true });
      source = es;
      es.onopen = () => {
        backoff = 1_000;
        setState("live");
      };
      es.addEventListener("agent.event", receive as EventListener);
      es.onmessage = receive; // unnamed messages, should the hub send any
      es.onerror = () => {
        if (es !== source) return;
        if (es.readyState === EventSource.CONNECTING) {
          // The browser retries by itself, resending Last-Event-ID.
          setState(navigator.onLine ? "reconnecting" : "offline");
          return;
        }
        es.close();
        source = null;
        scheduleReopen();
      };
    };

    const scheduleReopen = () => {
      if (stopped) return;
      setState(navigator.onLine ? "reconnecting" : "offline");
      clearTimeout(retryTimer);
      retryTimer = setTimeout(reopen, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };

    /** Asks once what the stream answers; reopens it unless the answer is final. */
    const reopen = async () => {
      if (stopped || source) return;
      probe?.abort();
      const controller = new AbortController();
      probe = controller;
      let status: number;
      try {
        const res = await fetch(url, {
          headers: { accept: "text/event-stream" },
          credentials: "same-origin",
          signal: controller.signal,
        });
        status = res.status;
        controller.abort(); // we only wanted the status; the EventSource below reads the stream
      } catch {
        if (controller.signal.aborted && probe !== controller) return;
        scheduleReopen(); // still no network
        return;
      }
      if (stopped || probe !== controller) return;
      probe = null;
      if (status === 410 || status === 404 || status === 403 || status === 401) {
        finish();
        return;
      }
      if (status >= 200 && status < 300) open();
      else scheduleReopen();
    };

    // Back online: a connection that spanned the outage may be dead without knowing it, and the browser's
    // own retry may be waiting out its delay. Start afresh from the last id now.
    const online = () => {
      if (stopped) return;
      backoff = 1_000;
      clearTimeout(retryTimer);
      probe?.abort();
      probe = null;
      source?.close();
      source = null;
      setState("reconnecting");
      open();
    };
    const offline = () => {
      if (!stopped) setState("offline");
    };
    window.addEventListener("online", online);
    window.addEventListener("offline", offline);
    open();

    return () => {
      stopped = true;
      source?.close();
      probe?.abort();
      clearTimeout(retryTimer);
      clearTimeout(flushTimer);
      window.removeEventListener("online", online);
      window.removeEventListener("offline", offline);
    };
  }, [url, from, max]);

  return { events, state, lastId, ended };
}

function withCursor(url: string, cursor: number): string {
  return `${url}${url.includes("?") ? "&" : "?"}cursor=${cursor}`;
}

/**
 * Invalidates queries at most once per `delayMs` per key, so a replay of thousands of events does not
 * refetch thousands of times.
 */
export function useBatchedInvalidation(delayMs = 300): (key: QueryKey) => void {
  const client = useQueryClient();
  const queued = useRef(new Map<string, QueryKey>());
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  const ref = useRef<(key: QueryKey) => void>(() => {});
  ref.current = (key: QueryKey) => {
    queued.current.set(JSON.stringify(key), key);
    timer.current ??= setTimeout(() => {
      timer.current = undefined;
      const keys = [...queued.current.values()];
      queued.current.clear();
      for (const k of keys) void invalidate(client, k);
    }, delayMs);
  };
  // A stable function whose body always sees the latest client.
  const stable = useRef((key: QueryKey) => ref.current(key));
  return stable.current;
}

function invalidate(client: QueryClient, queryKey: QueryKey) {
  return client.invalidateQueries({ queryKey });
}
