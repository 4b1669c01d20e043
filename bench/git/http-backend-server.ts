/**
 * A minimal CGI host for `git http-backend` (git's own smart HTTP server), so the git benchmark can compare
 * the hub with it over the same loopback HTTP. One CGI process per request, as a web server would run it:
 * the request body is streamed to the CGI's stdin, its header block (`Status:`, `Content-Type:`, ...) is
 * parsed from stdout and the rest is streamed back. Every request header is passed as `HTTP_*`, so a gzipped
 * body (`HTTP_CONTENT_ENCODING`) and protocol v2 (`HTTP_GIT_PROTOCOL`) are handled by http-backend itself.
 *
 * Repositories under `projectRoot` are exported to anyone (GIT_HTTP_EXPORT_ALL); pushes need
 * `http.receivepack=true` in the bare repository's config. Basic credentials are accepted unchecked and
 * the user name becomes REMOTE_USER.
 *
 * Standalone: tsx bench/git/http-backend-server.ts <projectRoot> [port]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export type HttpBackendServer = { url: string; stop: () => Promise<void> };

const httpBackend = join(execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim(), "git-http-backend");

function cgiEnv(req: IncomingMessage, projectRoot: string): Record<string, string | undefined> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: projectRoot,
    GIT_HTTP_EXPORT_ALL: "1",
    GIT_CONFIG_NOSYSTEM: "1",
    HOME: projectRoot,
    GATEWAY_INTERFACE: "CGI/1.1",
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: req.method ?? "GET",
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
  };
  const contentType = req.headers["content-type"];
  if (contentType) env.CONTENT_TYPE = contentType;
  // Without CONTENT_LENGTH (a chunked body) http-backend reads its stdin to EOF.
  const contentLength = req.headers["content-length"];
  if (contentLength) env.CONTENT_LENGTH = contentLength;
  const auth = req.headers.authorization;
  if (auth?.startsWith("Basic ")) {
    const user = Buffer.from(auth.slice(6), "base64").toString("utf8").split(":")[0];
    if (user) {
      env.REMOTE_USER = user;
      env.AUTH_TYPE = "Basic";
    }
  }
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === "authorization" || name === "content-type" || name === "content-length")
      continue;
    env[`HTTP_${name.toUpperCase().replaceAll("-", "_")}`] = Array.isArray(value) ? value.join(", ") : value;
  }
  return env;
}

/** Splits the CGI header block off the front of stdout, then streams the body. */
function relayCgiOutput(child: ChildProcess, res: ServerResponse, stderr: () => string) {
  let head = Buffer.alloc(0);
  let headersDone = false;
  const stdout = child.stdout;
  if (!stdout) throw new Error("CGI without stdout");

  const fail = (message: string) => {
    if (!res.headersSent) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`${message}\n${stderr()}`);
    } else {
      res.destroy(new Error(message));
    }
  };

  stdout.on("data", (chunk: Buffer) => {
    if (headersDone) {
      if (!res.write(chunk)) {
        stdout.pause();
        res.once("drain", () => stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, chunk]);
    let end = head.indexOf("\r\n\r\n");
    let sep = 4;
    if (end < 0) {
      end = head.indexOf("\n\n");
      sep = 2;
    }
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    let reason: string | undefined;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === "status") {
        status = Number.parseInt(value, 10);
        reason = value.replace(/^\d+\s*/, "") || undefined;
      } else {
        headers[name] = value;
      }
    }
    if (reason) res.writeHead(status, reason, headers);
    else res.writeHead(status, headers);
    const rest = head.subarray(end + sep);
    head = Buffer.alloc(0);
    if (rest.length) res.write(rest);
  });
  child.on("close", (code) => {
    if (!headersDone) fail(`git http-backend exited ${code} before sending headers`);
    else res.end();
  });
  child.on("error", (err) => fail(`git http-backend: ${err.message}`));
}

export function startHttpBackendServer({
  projectRoot,
  port = 0,
}: {
  projectRoot: string;
  port?: number;
}): Promise<HttpBackendServer> {
  const children = new Set<ChildProcess>();
  const server = createServer((req, res) => {
    const child = spawn(httpBackend, [], {
      env: cgiEnv(req, projectRoot) as unknown as NodeJS.ProcessEnv,
      stdio: ["pipe", "pipe", "pipe"],
    });
    children.add(child);
    child.on("close", () => children.delete(child));
    let err = "";
    child.stderr?.on("data", (d) => {
      err += d;
    });
    // http-backend may answer (and exit) without reading the whole body, e.g. on an error.
    child.stdin?.on("error", () => {});
    req.pipe(child.stdin as NodeJS.WritableStream);
    req.on("error", () => child.kill("SIGKILL"));
    res.on("close", () => {
      if (child.exitCode === null && !res.writableFinished) child.kill("SIGKILL");
    });
    relayCgiOutput(child, res, () => err);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const { port: actual } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${actual}`,
        stop: () =>
          new Promise<void>((done) => {
            for (const child of children) child.kill("SIGKILL");
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop() ?? "\0")) {
  const [projectRoot, port] = process.argv.slice(2);
  if (!projectRoot) {
    console.error("usage: tsx bench/git/http-backend-server.ts <projectRoot> [port]");
    process.exit(2);
  }
  startHttpBackendServer({ projectRoot, port: Number(port ?? 0) }).then((s) => console.log(`serving ${s.url}`));
}
