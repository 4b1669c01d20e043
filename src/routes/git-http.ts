/**
 * Git smart HTTP for assets: `/api/tenants/:tenantId/assets/:kind/:name.git/{info/refs,git-upload-pack,
 * git-receive-pack}`. Authenticated by git tokens (not sessions), bodies are pkt-lines and packs (not JSON),
 * so these routes sit outside the JSON API's middleware and outside the OpenAPI document. The routes map
 * HTTP to `git/service` (advertise, fetch, push) and back.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { findStateRepository } from "../agent-state/repositories";
import { ASSET_NAME, assetContentRule, assetKinds, assetRepositoryId, getAssetByName } from "../assets/assets";
import { getDb } from "../db/client";
import { badRequest, notFound } from "../errors";
import { GitFormatError } from "../git/objects/errors";
import { RECEIVE_PACK_CAPABILITIES, UPLOAD_PACK_CAPABILITIES } from "../git/protocol/advertisement";
import { isProtocolError } from "../git/protocol/errors";
import { decodeRequestBody } from "../git/protocol/gzip";
import { concatBytes, encodeLine, FLUSH_PKT } from "../git/protocol/pkt-line";
import { parseReceiveRequest } from "../git/protocol/receive-request";
import { matchRefPattern } from "../git/protocol/ref-pattern";
import { isGitService } from "../git/protocol/repo-action";
import { parseUploadRequest } from "../git/protocol/upload-request";
import {
  buildV2Advertisement,
  parseFetchArgs,
  parseLsRefsArgs,
  parseV2Request,
  wantsProtocolV2,
} from "../git/protocol/v2";
import { compactRepository } from "../git/service/compaction";
import { MAX_PUSH_BYTES, pushToRepository } from "../git/service/push";
import { advertise, HUB_VERSION, listRefs, servePack } from "../git/service/repository";
import { fetchV2, uploadPack } from "../git/service/upload-pack";
import type { AppEnv } from "../http/context";
import { gitTokenAuth } from "../http/middleware/git-token";
import { isAllowed } from "../http/middleware/require-grant";

const noCache = { "cache-control": "no-cache", expires: "Fri, 01 Jan 1980 00:00:00 GMT", pragma: "no-cache" };

/** Resolves `:kind/:repo` to the asset's grant resource (`asset:<id>`): unknown is a 404, malformed a 400. */
async function assetResource(c: Context<AppEnv>): Promise<string | null> {
  const kind = c.req.param("kind") ?? "";
  const segment = c.req.param("repo") ?? "";
  if (!(assetKinds as readonly string[]).includes(kind)) throw notFound("No such repository kind");
  if (!segment.endsWith(".git")) throw badRequest("Repository paths end in .git");
  const name = segment.slice(0, -4);
  if (!ASSET_NAME.test(name)) throw badRequest("Asset names are lowercase kebab-case", "invalid_name");
  const asset = await getAssetByName(getDb(c.env), c.get("tenant").id, kind, name);
  if (!asset) throw notFound("Repository not found");
  c.set("gitRepository", { id: assetRepositoryId(asset.id), kind });
  return `asset:${asset.id}`;
}

function gitResponse(body: BodyInit, service: string, kind: "advertisement" | "result") {
  return new Response(body, {
    status: 200,
    headers: { "content-type": `application/x-${service}-${kind}`, ...noCache },
  });
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

/** Where a request's repository is, which of its refs the token shows, and what it reads as when absent. */
function target(c: Context<AppEnv>) {
  const { id, emptyHead } = c.get("gitRepository");
  return {
    db: getDb(c.env),
    bucket: c.env.BLOBS,
    id,
    refPattern: c.get("gitToken").refPattern,
    missing: emptyHead ? { head: emptyHead } : null,
  };
}

/** Resolves an agent's state repository (`instances/:id` or `definitions/:id`): 404 outside the tenant. */
async function stateResource(c: Context<AppEnv>): Promise<string | null> {
  const owner = c.req.param("id") ?? "";
  const expected = c.req.path.includes("/agents/instances/") ? "ins_" : "agt_";
  if (!owner.startsWith(expected)) throw notFound("Agent not found");
  const repository = await findStateRepository(getDb(c.env), c.get("tenant").id, owner);
  c.set("gitRepository", { id: repository.repositoryId, kind: "agent-state", emptyHead: repository.defaultRef });
  return repository.resource;
}

const READ_ONLY = "agent-state-readonly";

/**
 * State repositories are written by their sidecar and the hub only: a push is refused before anything
 * else, with or without a token, in the bytes git clients expect.
 */
const refuseStatePush: MiddlewareHandler<AppEnv> = async (c, next) => {
  const suffix = c.req.path.slice(c.req.path.indexOf("/state.git/") + "/state.git/".length);
  if (c.req.method === "GET" && suffix === "info/refs" && c.req.query("service") === "git-receive-pack") {
    return new Response("# service=git-receive-pack\n0000ERR agent-state is read-only over HTTP\n", {
      status: 403,
      headers: { "content-type": "application/x-git-receive-pack-advertisement", "cache-control": "no-cache" },
    });
  }
  if (c.req.method === "POST" && suffix === "git-receive-pack") {
    let refs: string[] = [];
    try {
      const request = await parseReceiveRequest(
        decodeRequestBody(c.req.raw.body, c.req.header("content-encoding"), MAX_PUSH_BYTES),
        { advertised: RECEIVE_PACK_CAPABILITIES },
      );
      refs = request.commands.map((command) => command.ref);
      await request.pack.cancel().catch(() => {});
    } catch {
      // A malformed request is still refused, without the per-ref lines.
    }
    const lines = [encodeLine(`unpack ${READ_ONLY}\n`), ...refs.map((ref) => encodeLine(`ng ${ref} ${READ_ONLY}\n`))];
    return new Response(concatBytes([...lines, FLUSH_PKT]), {
      status: 200,
      headers: { "content-type": "application/x-git-receive-pack-result", "cache-control": "no-cache" },
    });
  }
  await next();
};

/** A protocol v2 command: `ls-refs` or `fetch` (an empty request is answered with nothing). */
async function serveV2(c: Context<AppEnv>, body: ReadableStream<Uint8Array>) {
  const request = await parseV2Request(body).catch(clientError);
  if (request.command === null) return gitResponse(new Uint8Array(0), "git-upload-pack", "result");
  const { db, bucket, id, refPattern, missing } = target(c);
  if (request.command === "fetch") {
    const fetch = parsedOrClientError(() => parseFetchArgs(request.args));
    const served = await servePack(db, bucket, id, fetch, refPattern, fetchV2, missing);
    return gitResponse(served, "git-upload-pack", "result");
  }
  const args = parsedOrClientError(() => parseLsRefsArgs(request.args));
  return gitResponse(await listRefs(db, bucket, id, args, refPattern, missing), "git-upload-pack", "result");
}

const PATH = "/api/tenants/:tenantId/assets/:kind/:repo";
const STATE_PATHS = [
  "/api/tenants/:tenantId/agents/instances/:id/state.git",
  "/api/tenants/:tenantId/agents/definitions/:id/state.git",
];
const GIT_PATH =
  /^\/api\/tenants\/[^/]+\/(assets\/[^/]+\/[^/]+\.git|agents\/(instances|definitions)\/[^/]+\/state\.git)\/(info\/refs|git-upload-pack|git-receive-pack)$/;

/** Whether a request is git smart HTTP (it skips the JSON API's middleware). */
export function isGitRequest(c: Context): boolean {
  return GIT_PATH.test(c.req.path);
}

async function advertisement(c: Context<AppEnv>) {
  const service = c.req.query("service");
  if (!isGitService(service)) throw badRequest("Only smart HTTP is served: ?service=git-upload-pack|git-receive-pack");
  // Fetches speak v2 when the client asks (stock git does); pushes stay v0, as git's own server does.
  if (service === "git-upload-pack" && wantsProtocolV2(c.req.header("git-protocol"))) {
    return gitResponse(buildV2Advertisement(HUB_VERSION), service, "advertisement");
  }
  const { db, bucket, id, refPattern, missing } = target(c);
  return gitResponse(await advertise(db, bucket, id, service, refPattern, missing), service, "advertisement");
}

async function uploadPackRoute(c: Context<AppEnv>) {
  const body = decodeRequestBody(c.req.raw.body, c.req.header("content-encoding"));
  if (wantsProtocolV2(c.req.header("git-protocol"))) return serveV2(c, body);
  const request = await parseUploadRequest(body, { advertised: UPLOAD_PACK_CAPABILITIES }).catch(clientError);
  const { db, bucket, id, refPattern, missing } = target(c);
  const served = await servePack(db, bucket, id, request, refPattern, uploadPack, missing);
  return gitResponse(served, "git-upload-pack", "result");
}

const routes = new Hono<AppEnv>()
  .use(`${PATH}/*`, gitTokenAuth({ resourceOf: assetResource }))
  .get(`${PATH}/info/refs`, advertisement)
  .post(`${PATH}/git-upload-pack`, uploadPackRoute)
  .post(`${PATH}/git-receive-pack`, async (c) => {
    const request = await parseReceiveRequest(
      decodeRequestBody(c.req.raw.body, c.req.header("content-encoding"), MAX_PUSH_BYTES),
      { advertised: RECEIVE_PACK_CAPABILITIES },
    ).catch(clientError);
    if (request.commands.length === 0) {
      // git's probe before a push larger than http.postBuffer: an empty answer lets it send the real one.
      await request.pack.cancel().catch(() => {});
      return gitResponse(new Uint8Array(0), "git-receive-pack", "result");
    }
    if (!request.packExpected) await request.pack.cancel().catch(() => {});
    const pack = request.packExpected ? request.pack : null;

    const { db, bucket, id, refPattern } = target(c);
    const report = await pushToRepository(
      db,
      bucket,
      id,
      { commands: request.commands, capabilities: request.capabilities, pack },
      {
        mayUpdate: (ref) => matchRefPattern(refPattern, ref),
        // Rewriting history needs more than write: manage on the repository.
        mayForce: isAllowed(c, c.get("gitToken").resource, "manage"),
        validateTip: assetContentRule(c.get("gitRepository").kind),
      },
    );
    // Packs pile up push by push; a repository with several gets them merged once the answer is out.
    c.executionCtx.waitUntil(
      compactRepository(db, bucket, id).catch((err) => console.error(`git compaction of ${id} failed`, err)),
    );
    return gitResponse(report, "git-receive-pack", "result");
  });

for (const path of STATE_PATHS) {
  routes
    .use(`${path}/*`, refuseStatePush, gitTokenAuth({ resourceOf: stateResource }))
    .get(`${path}/info/refs`, advertisement)
    .post(`${path}/git-upload-pack`, uploadPackRoute);
}

export const gitHttpRoutes = routes;
