/**
 * The two state repositories of an agent: its definition's (`refs/heads/deploy` holds the `deploy/` tree
 * the hub writes at launch) and each instance's (the state its sidecar pushes). Both are git repositories
 * on the hub's storage, named `agent-state/<agt_…|ins_…>`, and grants name them `agent-state:<id>`.
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { agent, agentInstance } from "../db/schema";
import { notFound } from "../errors";
import { parseCommit, parseTree } from "../git/objects/object";
import type { ObjectStore } from "../git/storage/object-store";

export const DEPLOY_REF = "refs/heads/deploy";
export const STATE_BRANCH = "refs/heads/main";

export const stateRepositoryId = (ownerId: string) => `agent-state/${ownerId}`;

/** Top-level entries a state commit may have; the deploy branch holds only `deploy/`. */
export const STATE_TOP_LEVEL_ENTRIES: ReadonlySet<string> = new Set([
  "state",
  ".gitignore",
  "turns.jsonl",
  "prompt.jsonl",
  "response.jsonl",
  "manifest.jsonl",
  "metadata.json",
  "tool-output",
]);
const DEPLOY_ENTRIES = new Set(["deploy", ".gitignore"]);

export type StateRepository = {
  /** `ins_…` or `agt_…`. */
  ownerId: string;
  kind: "instance" | "definition";
  repositoryId: string;
  /** The ref shown when none is asked for. */
  defaultRef: string;
  resource: string;
  /** The instance's agent definition (for an instance), or the definition itself. */
  agentId: string;
};

/** The state repository of an instance or agent definition of the tenant; 404 for anything else. */
export async function findStateRepository(db: Db, tenantId: string, ownerId: string): Promise<StateRepository> {
  if (ownerId.startsWith("ins_")) {
    const [row] = await db
      .select({ agentId: agentInstance.agentId })
      .from(agentInstance)
      .where(and(eq(agentInstance.id, ownerId), eq(agentInstance.tenantId, tenantId)))
      .limit(1);
    if (row) return describe(ownerId, "instance", row.agentId);
  } else if (ownerId.startsWith("agt_")) {
    const [row] = await db
      .select({ id: agent.id })
      .from(agent)
      .where(and(eq(agent.id, ownerId), eq(agent.tenantId, tenantId)))
      .limit(1);
    if (row) return describe(ownerId, "definition", ownerId);
  }
  throw notFound("Agent not found");
}

function describe(ownerId: string, kind: StateRepository["kind"], agentId: string): StateRepository {
  return {
    ownerId,
    kind,
    repositoryId: stateRepositoryId(ownerId),
    defaultRef: kind === "instance" ? STATE_BRANCH : DEPLOY_REF,
    resource: `agent-state:${ownerId}`,
    agentId,
  };
}

/**
 * The content rule of state repositories: which top-level entries a commit may have on its ref, and that
 * it has something besides `.gitignore`. Returns why the commit is refused, or null.
 */
export async function checkStateCommit(ref: string, commitOid: string, store: ObjectStore): Promise<string | null> {
  const commit = parseCommit((await store.get(commitOid)).body);
  const names = parseTree((await store.get(commit.tree)).body).map((e) => e.name);
  const allowed = ref === DEPLOY_REF ? DEPLOY_ENTRIES : STATE_TOP_LEVEL_ENTRIES;
  const stray = names.find((name) => !allowed.has(name));
  if (stray !== undefined) {
    return `path_violation: ${JSON.stringify(stray)} is not allowed at the top of ${ref} (allowed: ${[...allowed].join(", ")})`;
  }
  if (!names.some((name) => name !== ".gitignore")) return "path_violation: the commit holds nothing but .gitignore";
  return null;
}
