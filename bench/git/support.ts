/**
 * What the git benchmarks share: the `git` client with an isolated configuration, timed git commands,
 * REST calls to the hub (sign-up, tenant, asset, token), a target repository on either server, and
 * formatting of medians.
 */
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export type Side = "hub" | "backend";

/** git's environment for a benchmark: no system or user configuration but `home`, no prompts. */
export function gitEnvIn(home: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "Bench",
    GIT_AUTHOR_EMAIL: "bench@example.test",
    GIT_COMMITTER_NAME: "Bench",
    GIT_COMMITTER_EMAIL: "bench@example.test",
  };
}

export function gitRunner(home: string) {
  const env = () => gitEnvIn(home);
  /** Runs git and returns its trimmed stdout. */
  const git = async (cwd: string, ...args: string[]): Promise<string> => {
    const { stdout } = await execFileP("git", args, { cwd, env: env(), maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  };
  /** Runs git and returns its wall time in ms and its stderr; a failure carries git's stderr. */
  const timed = (cwd: string, args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 10 * 60_000) =>
    new Promise<{ ms: number; stderr: string }>((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn("git", args, {
        cwd,
        env: { ...env(), ...extraEnv },
        stdio: ["ignore", "ignore", "pipe"],
        timeout: timeoutMs,
        killSignal: "SIGKILL",
      });
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      child.on("error", reject);
      child.on("close", (code, signal) => {
        const ms = performance.now() - t0;
        if (code === 0) resolve({ ms, stderr });
        else
          reject(
            new Error(
              `git ${args.join(" ")} failed (${signal ?? `exit ${code}`}) after ${ms.toFixed(0)} ms\n${stderr}`,
            ),
          );
      });
    });
  return { git, timed, env };
}

export async function hubCall<T>(url: string, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return { body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}

/** A signed-up user and a tenant of theirs on the hub, to create repositories in. */
export async function hubAccount(hubUrl: string): Promise<{ token: string; tenantId: string }> {
  const signUp = await hubCall<{ user: { id: string } }>(hubUrl, "POST", "/api/auth/sign-up/email", undefined, {
    name: "Bench",
    email: `bench-${Date.now()}-${Math.random().toString(36).slice(2)}@example.test`,
    password: "bench password 123",
  });
  const token = signUp.headers.get("set-auth-token") as string;
  const slug = `bench-git-${Date.now()}`;
  const tenant = await hubCall<{ id: string }>(hubUrl, "POST", "/api/tenants", token, { name: "Bench git", slug });
  return { token, tenantId: tenant.body.id };
}

/** A new empty repository on the hub (an asset with a read-and-push token) as a URL with credentials. */
export async function hubRepository(hubUrl: string, account: { token: string; tenantId: string }, name: string) {
  const { token, tenantId } = account;
  const asset = (
    await hubCall<{ id: string }>(hubUrl, "POST", `/api/tenants/${tenantId}/assets`, token, { kind: "repo", name })
  ).body;
  const minted = await hubCall<{ secret: string }>(hubUrl, "POST", "/api/me/git-tokens", token, {
    name: `bench-${name}`,
    tenantId,
    resource: `asset:${asset.id}`,
    refPattern: "refs/**",
    actions: ["can_read", "can_push"],
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const port = new URL(hubUrl).port;
  return `http://git:${minted.body.secret}@127.0.0.1:${port}/api/tenants/${tenantId}/assets/repo/${name}.git`;
}

/** A new empty bare repository served by git http-backend, as a URL. */
export async function backendRepository(
  git: (cwd: string, ...args: string[]) => Promise<string>,
  projectRoot: string,
  backendUrl: string,
  name: string,
) {
  const dir = join(projectRoot, `${name}.git`);
  await git(projectRoot, "init", "-q", "--bare", "-b", "main", dir);
  await git(dir, "config", "http.receivepack", "true");
  return `${backendUrl.replace("http://", "http://git:unused@")}/${name}.git`;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
export const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);
export const pad = (s: string, n: number) => s.padEnd(n);
