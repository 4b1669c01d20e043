/**
 * Agent data: an agent's state repository over REST (files, history, one commit, branches, restore) and an
 * instance's timeline. `:agentId` is an instance (`ins_…`: the state its sidecar pushed) or a definition
 * (`agt_…`: the deploy tree). Reads need `agent-state:<id>` read; restore needs manage.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  commitDetail,
  listBranches,
  listFiles,
  listHistory,
  openState,
  readFile,
  resolveCommit,
  restoreCommit,
} from "../agent-state/data";
import { instanceTimeline } from "../agent-state/instance-timeline";
import { findStateRepository, stateRepositoryId } from "../agent-state/repositories";
import { getDb } from "../db/client";
import { badRequest } from "../errors";
import type { AppEnv } from "../http/context";
import { idResource, requireGrant } from "../http/middleware/require-grant";
import {
  errors,
  jsonBody,
  jsonRequest,
  PageQuerySchema,
  pageOf,
  pathParam,
  TenantParams,
  Timestamp,
} from "../http/responses";
import { createRouter } from "../http/router";
import { instanceObject } from "../runtime/stubs";

const AgentParams = TenantParams.extend({
  agentId: pathParam("agentId", "ins_0123456789abcdef0123456789abcdef"),
});
const RefParams = AgentParams.extend({ ref: pathParam("ref", "0123456789abcdef0123456789abcdef01234567") });
const InstanceParams = TenantParams.extend({
  instanceId: pathParam("instanceId", "ins_0123456789abcdef0123456789abcdef"),
});
const stateResource = idResource("agent-state", "agentId");
const RefQuery = z.object({
  ref: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .openapi({ description: "A branch, tag or commit id; the repository's default branch when absent" }),
});
const FilesQuery = PageQuerySchema.extend(RefQuery.shape).extend({
  path: z.string().max(1024).optional().openapi({ description: "Only what is under this directory" }),
});
const HistoryQuery = PageQuerySchema.extend(RefQuery.shape);

const FileEntrySchema = z
  .object({ path: z.string(), type: z.enum(["file", "directory"]), size: z.number().int().optional() })
  .openapi("FileEntry");
const FileContentSchema = z
  .object({ path: z.string(), content: z.string(), encoding: z.enum(["utf-8", "base64"]) })
  .openapi("FileContent");
const HistoryEntrySchema = z
  .object({
    ref: z.string().openapi({ description: "The commit id" }),
    message: z.string(),
    author: z.string(),
    timestamp: Timestamp,
    filesChanged: z.number().int(),
  })
  .openapi("HistoryEntry");
const CommitDetailSchema = z
  .object({
    ref: z.string(),
    message: z.string(),
    author: z.string(),
    timestamp: Timestamp,
    parents: z.array(z.string()),
    changes: z.array(
      z.object({
        path: z.string(),
        status: z.enum(["added", "modified", "deleted"]),
        additions: z.number().int().optional(),
        deletions: z.number().int().optional(),
      }),
    ),
  })
  .openapi("CommitDetail");
const BranchSchema = z
  .object({
    name: z.string(),
    isCurrent: z.boolean(),
    lastCommitRef: z.string(),
    lastCommitMessage: z.string(),
    lastCommitAt: Timestamp,
  })
  .openapi("BranchInfo");
const RestoreSchema = z
  .object({ branch: z.string().min(1).max(256).optional().openapi({ description: "Default: the default branch" }) })
  .openapi("RestoreRequest");
const RestoredSchema = z
  .object({ ref: z.string(), branch: z.string(), tree: z.string(), instanceNotified: z.boolean() })
  .openapi("RestoreResult");
const TimelineItemSchema = z
  .object({
    kind: z.enum(["turn", "mail"]),
    timestamp: Timestamp,
    cursor: z.number().int().nullable().openapi({
      description: "`Last-Event-ID` that replays the instance's event stream from this item (null: no longer held)",
    }),
    source: z.enum(["hub", "state", "both"]),
    content: z.string().optional(),
    status: z.enum(["completed", "in-progress", "error"]).optional(),
    isError: z.boolean().optional(),
    errors: z.array(z.object({ category: z.string(), message: z.string() })).optional(),
    turnId: z.string().nullable().optional(),
    model: z.string().nullable().optional(),
    direction: z.enum(["in", "out"]).optional(),
    messageId: z.string().optional(),
    mailId: z.string().nullable().optional(),
    raw: z.string().nullable().optional(),
    checkpointHash: z.string().optional(),
  })
  .openapi("TimelineItem");
const TimelineSchema = z
  .object({
    data: z.array(TimelineItemSchema),
    gaps: z.array(z.object({ kind: z.string(), description: z.string() })),
  })
  .openapi("Timeline");

const base = "/api/tenants/{tenantId}/agents/{agentId}";
const tags = ["Agent Data"];

async function opened(c: { env: Env; req: { valid(t: "param"): { agentId: string } } }, tenantId: string) {
  const db = getDb(c.env);
  const repo = await findStateRepository(db, tenantId, c.req.valid("param").agentId);
  return { db, repo, opened: await openState(db, c.env.BLOBS, repo) };
}

/** `GET …/data/<path>`: the path may span segments, so it is read from the URL itself. */
async function fileAt(c: Context<AppEnv>) {
  const agentId = c.req.param("agentId") ?? "";
  const ref = c.req.query("ref");
  if (ref !== undefined && (ref.length === 0 || ref.length > 256)) throw badRequest("ref must be 1 to 256 characters");
  const db = getDb(c.env);
  const repo = await findStateRepository(db, c.get("tenant").id, agentId);
  const o = await openState(db, c.env.BLOBS, repo);
  const commit = await resolveCommit(o, ref ?? repo.defaultRef);
  const prefix = `/agents/${agentId}/data/`;
  let path: string;
  try {
    path = decodeURIComponent(c.req.path.slice(c.req.path.indexOf(prefix) + prefix.length));
  } catch {
    throw badRequest("The file path is not valid percent-encoding");
  }
  return readFile(o.store, commit, path);
}

const router = createRouter();
// Nested files (`data/state/mail/…`): the documented route below takes one segment only.
router.get("/api/tenants/:tenantId/agents/:agentId/data/:path{.+/.+}", requireGrant(stateResource, "read"), async (c) =>
  c.json(await fileAt(c), 200),
);

export const agentDataRoutes = router
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/data`,
      tags,
      summary: "List the files of an agent's state",
      description:
        "Every file and directory at the ref (under `path`), sorted by path. An instance that never pushed its state has none.",
      middleware: [requireGrant(stateResource, "read")] as const,
      request: { params: AgentParams, query: FilesQuery },
      responses: {
        200: jsonBody(pageOf(FileEntrySchema, "FileEntryList"), "A page of files"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { limit, cursor, ref, path } = c.req.valid("query");
      const { repo, opened: o } = await opened(c, c.get("tenant").id);
      if (!ref && !o.refs.some((r) => r.name === repo.defaultRef)) return c.json({ data: [], nextCursor: null }, 200);
      const commit = await resolveCommit(o, ref ?? repo.defaultRef);
      return c.json(await listFiles(o.store, commit, path ?? "", { limit, cursor }), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/data/{path}`,
      tags,
      summary: "Read one file of an agent's state",
      description: "Text as UTF-8, anything else as base64 (`encoding`). The path may contain slashes.",
      middleware: [requireGrant(stateResource, "read")] as const,
      request: { params: AgentParams.extend({ path: pathParam("path", "turns.jsonl") }), query: RefQuery },
      responses: { 200: jsonBody(FileContentSchema, "The file"), ...errors(400, 401, 403, 404) },
    }),
    async (c) => c.json(await fileAt(c), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/history`,
      tags,
      summary: "List the commits of an agent's state",
      description: "Newest first, from the ref, with how many files each commit changed.",
      middleware: [requireGrant(stateResource, "read")] as const,
      request: { params: AgentParams, query: HistoryQuery },
      responses: {
        200: jsonBody(pageOf(HistoryEntrySchema, "HistoryEntryList"), "A page of commits"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { limit, cursor, ref } = c.req.valid("query");
      const { repo, opened: o } = await opened(c, c.get("tenant").id);
      if (!ref && !o.refs.some((r) => r.name === repo.defaultRef)) return c.json({ data: [], nextCursor: null }, 200);
      const tip = await resolveCommit(o, ref ?? repo.defaultRef);
      return c.json(await listHistory(o.store, tip, { limit, cursor }), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/history/{ref}`,
      tags,
      summary: "One commit of an agent's state, with what it changed",
      description:
        "Each file added, modified or deleted against the first parent, with the lines added and removed (none for binary files).",
      middleware: [requireGrant(stateResource, "read")] as const,
      request: { params: RefParams },
      responses: { 200: jsonBody(CommitDetailSchema, "The commit"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { opened: o } = await opened(c, c.get("tenant").id);
      const commit = await resolveCommit(o, c.req.valid("param").ref);
      return c.json(await commitDetail(o.store, commit), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: `${base}/branches`,
      tags,
      summary: "List the branches of an agent's state",
      middleware: [requireGrant(stateResource, "read")] as const,
      request: { params: AgentParams },
      responses: { 200: jsonBody(z.object({ data: z.array(BranchSchema) }), "The branches"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { opened: o } = await opened(c, c.get("tenant").id);
      return c.json({ data: await listBranches(o) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: `${base}/history/{ref}/restore`,
      tags,
      summary: "Restore an earlier state as a new commit",
      description:
        "Needs `agent-state:<id>` manage. Commits the tree of `ref` on top of the branch (history is kept), signed by the hub. " +
        "A running instance is sent the commit, so its files follow (`instanceNotified`).",
      middleware: [requireGrant(stateResource, "manage")] as const,
      request: { params: RefParams, ...jsonRequest(RestoreSchema) },
      responses: { 201: jsonBody(RestoredSchema, "The new commit"), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const db = getDb(c.env);
      const tenantId = c.get("tenant").id;
      const repo = await findStateRepository(db, tenantId, c.req.valid("param").agentId);
      const branch = c.req.valid("json").branch ?? repo.defaultRef;
      const restored = await restoreCommit(c.env, db, repo, { commit: c.req.valid("param").ref, branch, tenantId });
      let instanceNotified = false;
      if (repo.kind === "instance") {
        instanceNotified = await instanceObject(c.env, repo.ownerId).stateRestored({
          repositoryId: stateRepositoryId(repo.ownerId),
          repoId: { kind: "agent-state", id: repo.ownerId },
          ref: restored.branch,
          commitSha: restored.commitOid,
        });
      }
      return c.json({ ref: restored.commitOid, branch: restored.branch, tree: restored.tree, instanceNotified }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/api/tenants/{tenantId}/agents/instances/{instanceId}/timeline",
      tags,
      summary: "An instance's timeline",
      description:
        "Turns and mail in order: rebuilt from the state repository's checkpoints and mail records, merged with what the hub recorded. " +
        "Each item's `cursor` opens the event stream at that item (`Last-Event-ID`). `gaps` reports damage in the repository.",
      middleware: [requireGrant(idResource("agent-state", "instanceId"), "read")] as const,
      request: { params: InstanceParams },
      responses: { 200: jsonBody(TimelineSchema, "The timeline"), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const { instanceId } = c.req.valid("param");
      if (!instanceId.startsWith("ins_")) throw badRequest("Not an instance id", "invalid_id");
      return c.json(await instanceTimeline(c.env, getDb(c.env), c.get("tenant").id, instanceId), 200);
    },
  );
