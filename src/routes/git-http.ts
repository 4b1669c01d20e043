/**
 * Git smart HTTP for assets: `/api/tenants/:tenantId/assets/:kind/:name.git/{info/refs,git-upload-pack,
 * git-receive-pack}`. Authenticated by git tokens (not sessions), bodies are pkt-lines and packs (not JSON),
 * so these routes sit outside the JSON API's middleware and outside the OpenAPI document.
 */
import { type Context, Hono } from "hono";
import { ASSET_NAME, assetKinds, assetRepositoryId, findAssetByName } from "../assets/assets";
import { validateSkillTree } from "../assets/skills";
import { getDb } from "../db/client";
import { badRequest, notFound } from "../errors";
import { GitFormatError } from "../git/objects/errors";
import { parseCommit, parseTag, parseTree, treeEntryType } from "../git/objects/object";
import {
  buildAdvertisement,
  RECEIVE_PACK_CAPABILITIES,
  UPLOAD_PACK_CAPABILITIES,
  visibleRefs,
} from "../git/protocol/advertisement";
import { negotiatedCapabilities } from "../git/protocol/capabilities";
import { isProtocolError } from "../git/protocol/errors";
import { decodeRequestBody } from "../git/protocol/gzip";
import { readAllBytes } from "../git/protocol/pkt-line";
import { parseReceiveRequest } from "../git/protocol/receive-request";
import { isGitService } from "../git/protocol/repo-action";
import { buildReportStatus } from "../git/protocol/report-status";
import { negotiatedSideBand } from "../git/protocol/side-band";
import { parseUploadRequest } from "../git/protocol/upload-request";
import {
  buildV2Advertisement,
  formatLsRefs,
  parseFetchArgs,
  parseLsRefsArgs,
  parseV2Request,
  wantsProtocolV2,
} from "../git/protocol/v2";
import { preparePush } from "../git/service/receive-pack";
import { fetchV2, type UploadPackInput, uploadPack, uploadPackError } from "../git/service/upload-pack";
import { ObjectStore } from "../git/storage/object-store";
import {
  acquirePushLease,
  findRepository,
  publishPush,
  readRepositoryState,
  releasePushLease,
} from "../git/storage/repositories";
import type { AppEnv } from "../http/context";
import { errorResponse } from "../http/error-envelope";
import { gitTokenAuth, refAllowed } from "../http/middleware/git-token";
import { isAllowed } from "../http/middleware/require-grant";

const HUB_VERSION = "0.1.0";
/** A push is held in memory while it is checked; a Worker has 128 MB. */
export const MAX_PUSH_BYTES = 64 * 1024 * 1024;

const noCache = { "cache-control": "no-cache", expires: "Fri, 01 Jan 1980 00:00:00 GMT", pragma: "no-cache" };

/** Resolves `:kind/:repo` to the asset's grant resource (`asset:<id>`), with the reference's errors. */
async function assetResource(c: Context<AppEnv>): Promise<string | null> {
  const kind = c.req.param("kind") ?? "";
  const segment = c.req.param("repo") ?? "";
  if (!(assetKinds as readonly string[]).includes(kind)) throw notFound("No such repository kind");
  if (!segment.endsWith(".git")) throw badRequest("Repository paths end in .git");
  const name = segment.slice(0, -4);
  if (!ASSET_NAME.test(name)) throw badRequest("Asset names are lowercase kebab-case", "invalid_name");
  const asset = await findAssetByName(getDb(c.env), c.get("tenant").id, kind, name);
  if (!asset) throw notFound("Repository not found");
  c.set("gitRepository", { id: assetRepositoryId(asset.id), kind });
  return `asset:${asset.id}`;
}

async function openRepository(c: Context<AppEnv>) {
  const db = getDb(c.env);
  const id = c.get("gitRepository").id;
  const [repository, state] = await Promise.all([findRepository(db, id), readRepositoryState(db, id)]);
  if (!repository) throw notFound("Repository not found");
  const store = await ObjectStore.open(c.env.BLOBS, id, state.packs);
  return { repository, ...state, store };
}

/** Annotated tags are advertised with the commit they peel to. */
async function advertisedRefs(store: ObjectStore, refs: readonly { name: string; oid: string }[]) {
  return Promise.all(
    refs.map(async (ref) => {
      if (!ref.name.startsWith("refs/tags/")) return ref;
      const object = await store.read(ref.oid);
      if (object?.type !== "tag") return ref;
      return { ...ref, peeled: parseTag(object.body).object };
    }),
  );
}

function gitResponse(body: BodyInit, service: string, kind: "advertisement" | "result") {
  return new Response(body, {
    status: 200,
    headers: { "content-type": `application/x-${service}-${kind}`, ...noCache },
  });
}

/** Skill repositories keep a valid SKILL.md in every top-level directory. */
async function validateSkillTip(_ref: string, commitOid: string, store: ObjectStore): Promise<string | null> {
  const commit = parseCommit((await store.get(commitOid)).body);
  const root = parseTree((await store.get(commit.tree)).body);
  const result = await validateSkillTree(
    root.map((e) => ({ name: e.name, isDirectory: treeEntryType(e.mode) === "tree" })),
    async (directory) => {
      const dir = root.find((e) => e.name === directory);
      if (!dir) return null;
      const file = parseTree((await store.get(dir.oid)).body).find((e) => e.name === "SKILL.md");
      if (!file || treeEntryType(file.mode) !== "blob") return null;
      return new TextDecoder().decode((await store.get(file.oid)).body);
    },
  );
  return "error" in result ? `invalid skill: ${result.error}` : null;
}

/** Protocol errors in a request body are the client's fault: a 400 in the envelope. */
function clientError(err: unknown): never {
  if (isProtocolError(err) || err instanceof GitFormatError) throw badRequest(err.message, "invalid_git_request");
  throw err;
}

function parsedOrClientError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    return clientError(err);
  }
}

/** Runs upload-pack (v0 or v2 fetch) on the repository; a broken stored object is an `ERR` for git to show. */
async function servePack(
  c: Context<AppEnv>,
  request: UploadPackInput["request"],
  serve: (input: UploadPackInput) => Promise<ReadableStream<Uint8Array>>,
): Promise<ReadableStream<Uint8Array>> {
  const { refs, packs, store } = await openRepository(c);
  try {
    return await serve({
      bucket: c.env.BLOBS,
      repositoryId: c.get("gitRepository").id,
      refs: await advertisedRefs(store, refs),
      packs,
      store,
      request,
      refPattern: c.get("gitToken").refPattern,
    });
  } catch (err) {
    if (!(err instanceof GitFormatError)) throw err;
    return uploadPackError(`upload-pack: ${err.message}`);
  }
}

/** A protocol v2 command: `ls-refs` or `fetch` (an empty request is answered with nothing). */
async function serveV2(c: Context<AppEnv>, body: ReadableStream<Uint8Array>) {
  const request = await parseV2Request(body).catch(clientError);
  if (request.command === null) return gitResponse(new Uint8Array(0), "git-upload-pack", "result");
  if (request.command === "fetch") {
    const fetch = parsedOrClientError(() => parseFetchArgs(request.args));
    return gitResponse(await servePack(c, fetch, fetchV2), "git-upload-pack", "result");
  }
  const args = parsedOrClientError(() => parseLsRefsArgs(request.args));
  const { repository, refs, store } = await openRepository(c);
  const pattern = c.get("gitToken").refPattern;
  const visible = visibleRefs(await advertisedRefs(store, refs), pattern);
  const headTarget = repository.head;
  const headVisible = headTarget !== null && refAllowed(pattern, headTarget);
  return gitResponse(
    formatLsRefs(visible, { target: headTarget, targetVisible: headVisible }, args),
    "git-upload-pack",
    "result",
  );
}

const PATH = "/api/tenants/:tenantId/assets/:kind/:repo";
const GIT_PATH = /^\/api\/tenants\/[^/]+\/assets\/[^/]+\/[^/]+\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;

/** Whether a request is git smart HTTP (it skips the JSON API's middleware). */
export function isGitRequest(c: Context): boolean {
  return GIT_PATH.test(c.req.path);
}

export const gitHttpRoutes = new Hono<AppEnv>()
  .use(`${PATH}/*`, gitTokenAuth({ resourceOf: assetResource }))
  .get(`${PATH}/info/refs`, async (c) => {
    const service = c.req.query("service");
    if (!isGitService(service))
      throw badRequest("Only smart HTTP is served: ?service=git-upload-pack|git-receive-pack");
    // Fetches speak v2 when the client asks (stock git does); pushes stay v0, as git's own server does.
    if (service === "git-upload-pack" && wantsProtocolV2(c.req.header("git-protocol"))) {
      return gitResponse(buildV2Advertisement(HUB_VERSION), service, "advertisement");
    }
    const { repository, refs, store } = await openRepository(c);
    const body = buildAdvertisement({
      service,
      refs: await advertisedRefs(store, refs),
      headTarget: repository.head,
      capabilities: service === "git-upload-pack" ? UPLOAD_PACK_CAPABILITIES : RECEIVE_PACK_CAPABILITIES,
      version: HUB_VERSION,
      refPattern: c.get("gitToken").refPattern,
    });
    return gitResponse(body, service, "advertisement");
  })
  .post(`${PATH}/git-upload-pack`, async (c) => {
    const body = decodeRequestBody(c.req.raw.body, c.req.header("content-encoding"));
    if (wantsProtocolV2(c.req.header("git-protocol"))) return serveV2(c, body);
    const request = await parseUploadRequest(body, { advertised: UPLOAD_PACK_CAPABILITIES }).catch(clientError);
    return gitResponse(await servePack(c, request, uploadPack), "git-upload-pack", "result");
  })
  .post(`${PATH}/git-receive-pack`, async (c) => {
    const db = getDb(c.env);
    const repositoryId = c.get("gitRepository").id;
    const request = await parseReceiveRequest(
      decodeRequestBody(c.req.raw.body, c.req.header("content-encoding"), MAX_PUSH_BYTES),
      { advertised: RECEIVE_PACK_CAPABILITIES },
    ).catch(clientError);
    if (request.commands.length === 0) {
      // git's probe before a push larger than http.postBuffer: an empty answer lets it send the real one.
      await request.pack.cancel().catch(() => {});
      return gitResponse(new Uint8Array(0), "git-receive-pack", "result");
    }
    const pack = request.packExpected ? await readAllBytes(request.pack).catch(clientError) : null;
    if (!request.packExpected) await request.pack.cancel().catch(() => {});

    const lease = await acquirePushLease(db, repositoryId);
    if (!lease) {
      c.header("retry-after", "2");
      return errorResponse(c, 503, "push_in_progress", "Another push to this repository is in progress; retry shortly");
    }
    try {
      const { refs, store } = await openRepository(c);
      const token = c.get("gitToken");
      const resource = token.resource;
      const caps = negotiatedCapabilities(request.capabilities, RECEIVE_PACK_CAPABILITIES);
      const outcome = await preparePush({
        bucket: c.env.BLOBS,
        repositoryId,
        store,
        currentRefs: refs,
        commands: request.commands,
        pack,
        atomic: caps.has("atomic"),
        policy: {
          mayUpdate: (ref) => refAllowed(token.refPattern, ref),
          // Rewriting history needs more than write: manage on the repository.
          mayForce: isAllowed(c, resource, "manage"),
          validateTip: c.get("gitRepository").kind === "skill" ? validateSkillTip : undefined,
        },
      });
      let statuses = outcome.statuses;
      if (outcome.publish) {
        const published = await publishPush(db, repositoryId, lease, outcome.publish.pack, outcome.publish.updates);
        if (!published) {
          statuses = statuses.map((s) => (s.ok ? { ref: s.ref, ok: false, reason: "push lease lost; retry" } : s));
        }
      }
      const report = buildReportStatus({ unpackError: outcome.unpackError, refs: statuses }, negotiatedSideBand(caps));
      return gitResponse(report, "git-receive-pack", "result");
    } finally {
      await releasePushLease(db, repositoryId, lease);
    }
  });
