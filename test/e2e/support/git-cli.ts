/**
 * Stock git for the end-to-end tests: an environment that reads no user or system configuration, never
 * prompts, and commits as a fixed identity; a runner over it; asset repositories to clone.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { client, type Session, uniqueName } from "./hub-client";

export function gitEnv(home: string, config: Record<string, string> = {}): NodeJS.ProcessEnv {
  const entries = Object.entries(config);
  return {
    ...process.env,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "E2E",
    GIT_AUTHOR_EMAIL: "e2e@example.test",
    GIT_COMMITTER_NAME: "E2E",
    GIT_COMMITTER_EMAIL: "e2e@example.test",
    GIT_CONFIG_COUNT: String(entries.length),
    ...Object.fromEntries(
      entries.flatMap(([key, value], i) => [
        [`GIT_CONFIG_KEY_${i}`, key],
        [`GIT_CONFIG_VALUE_${i}`, value],
      ]),
    ),
  };
}

const run = promisify(execFile);

/**
 * git with `gitEnv(home(), config())`: both are read on every call, so a suite may switch them (the
 * protocol version, say) between tests.
 */
export function gitRunner(home: () => string, config: () => Record<string, string> = () => ({})) {
  const env = () => gitEnv(home(), config());

  async function git(cwd: string, ...args: string[]): Promise<string> {
    const { stdout } = await run("git", args, { cwd, env: env(), maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  }

  /** Runs git expecting failure; returns stderr. */
  async function gitFails(cwd: string, ...args: string[]): Promise<string> {
    try {
      await run("git", args, { cwd, env: env() });
    } catch (err) {
      return String((err as { stderr?: string }).stderr ?? err);
    }
    throw new Error(`git ${args.join(" ")} succeeded but should have failed`);
  }

  /** Writes, adds and commits one file; returns the new commit's id. */
  async function commitFile(dir: string, file: string, content: string, message = `edit ${file}`) {
    await writeFile(join(dir, file), content);
    await git(dir, "add", file);
    await git(dir, "commit", "-q", "-m", message);
    return git(dir, "rev-parse", "HEAD");
  }

  return { env, git, gitFails, commitFile };
}

export type AssetRepo = { tenantId: string; assetId: string; url: (secret: string) => string };

/** A new asset repository (kind `repo` unless told) and its clone URL for a token's secret. */
export async function createAssetRepo(hubUrl: string, owner: Session, tenantId: string, kind = "repo") {
  const name = uniqueName("repo");
  const created = await client(hubUrl).ok<{ id: string }>("POST", `/api/tenants/${tenantId}/assets`, owner.token, {
    kind,
    name,
  });
  const { port } = new URL(hubUrl);
  return {
    tenantId,
    assetId: created.id,
    url: (secret: string) =>
      `http://git:${secret}@127.0.0.1:${port}/api/tenants/${tenantId}/assets/${kind}/${name}.git`,
  } satisfies AssetRepo;
}
