import { ProtocolError } from "./errors";

/** What a git HTTP request does to a repository. */
export type RepoAction = "init" | "writeTree" | "receivePack" | "createPack" | "resolveRef";
export type GitService = "git-upload-pack" | "git-receive-pack";
export type RepoVerb = "create" | "write" | "read";

export function isGitService(value: string | null | undefined): value is GitService {
  return value === "git-upload-pack" || value === "git-receive-pack";
}

/**
 * Maps a smart-HTTP request to its RepoAction. `suffix` is the path after `<repo>.git/`. Returns null for a
 * path that is not a smart-HTTP endpoint (the route answers 404); an advertisement for any service but the
 * two smart ones throws (the route answers 400).
 */
export function repoActionFor(method: string, suffix: string, service: string | null): RepoAction | null {
  const m = method.toUpperCase();
  if (suffix === "info/refs" && (m === "GET" || m === "HEAD")) {
    if (!isGitService(service)) throw new ProtocolError("invalid_request", "unsupported service");
    return "resolveRef";
  }
  if (m === "POST" && suffix === "git-upload-pack") return "createPack";
  if (m === "POST" && suffix === "git-receive-pack") return "receivePack";
  return null;
}

/** The grant verb a RepoAction needs on `asset:<id>` / `agent-state:<id>`. */
export function verbForRepoAction(action: RepoAction): RepoVerb {
  switch (action) {
    case "init":
      return "create";
    case "writeTree":
    case "receivePack":
      return "write";
    case "createPack":
    case "resolveRef":
      return "read";
  }
}

/** True when the action only reads (the advertisement and upload-pack). */
export function isReadAction(action: RepoAction): boolean {
  return verbForRepoAction(action) === "read";
}

const MINTABLE: Readonly<Record<string, readonly RepoAction[]>> = {
  can_read: ["createPack", "resolveRef"],
  can_push: ["receivePack"],
  createPack: ["createPack"],
  resolveRef: ["resolveRef"],
  receivePack: ["receivePack"],
};

/**
 * Expands the actions a git token may be minted with (aliases `can_read`, `can_push`, and the bare names
 * `receivePack`, `createPack`, `resolveRef`). `init`, `writeTree` and anything else are returned in
 * `rejected` for the mint route to answer 400.
 */
export function expandTokenActions(requested: readonly string[]): { actions: RepoAction[]; rejected: string[] } {
  const actions = new Set<RepoAction>();
  const rejected: string[] = [];
  for (const name of requested) {
    const expanded = Object.hasOwn(MINTABLE, name) ? MINTABLE[name] : undefined;
    if (expanded) for (const a of expanded) actions.add(a);
    else rejected.push(name);
  }
  return { actions: [...actions], rejected };
}
