/**
 * The real `git` binary, for tests: it builds the packs a hub would send and checks what the sidecar
 * produced, so neither side is judged by isomorphic-git alone.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { serializeSignedCommit } from "../../src/git/service/genesis";
import type { HubSigningKey } from "../../src/secrets/hub-signing-key";

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "hub",
  GIT_AUTHOR_EMAIL: "hub@agent-hub.local",
  GIT_COMMITTER_NAME: "hub",
  GIT_COMMITTER_EMAIL: "hub@agent-hub.local",
  GIT_CONFIG_NOSYSTEM: "1",
  HOME: tmpdir(),
};

/** Runs git in `cwd` and returns stdout (a Buffer when `binary`). */
export function gitRun(cwd: string, args: string[], input?: string | Buffer): string {
  return execFileSync("git", args, { cwd, env: ENV, input, maxBuffer: 256 * 1024 * 1024 }).toString("utf8");
}

export function gitBytes(cwd: string, args: string[], input?: string | Buffer): Buffer {
  return execFileSync("git", args, { cwd, env: ENV, input, maxBuffer: 256 * 1024 * 1024 });
}

/** A new repository with `files` written and staged, nothing committed yet. */
async function stagedRepository(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sidecar-git-"));
  gitRun(dir, ["init", "-q", "-b", "main"]);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  gitRun(dir, ["add", "-A"]);
  return dir;
}

/** A new repository with one commit holding `files`; returns its directory and the commit. */
export async function commitTree(
  files: Record<string, string>,
  message = "files",
): Promise<{ dir: string; sha: string }> {
  const dir = await stagedRepository(files);
  gitRun(dir, ["commit", "-q", "-m", message]);
  return { dir, sha: gitRun(dir, ["rev-parse", "HEAD"]).trim() };
}

/** A pack of everything reachable from `sha`, as `git pack-objects --revs` writes it (deltas included). */
export function packOf(dir: string, sha: string): Buffer {
  return gitBytes(dir, ["pack-objects", "--revs", "--stdout", "-q"], `${sha}\n`);
}

/** Indexes a pack into a new bare repository and points `ref` at `sha`; returns the repository. */
export async function bareWithPack(pack: Buffer, ref: string, sha: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sidecar-bare-"));
  gitRun(dir, ["init", "-q", "--bare", "-b", "main"]);
  gitRun(dir, ["index-pack", "--stdin"], pack);
  gitRun(dir, ["update-ref", ref, sha]);
  return dir;
}

/** Like `commitTree`, but the commit is signed by `key` as the hub signs its deploy commits. */
export async function signedCommitTree(
  files: Record<string, string>,
  key: HubSigningKey,
  message = "Update deploy tree",
): Promise<{ dir: string; sha: string }> {
  const dir = await stagedRepository(files);
  const tree = gitRun(dir, ["write-tree"]).trim();
  const who = { name: "agent-hub", email: "hub@agent-hub.local", timestamp: 1_700_000_000, timezone: "+0000" };
  const commit = await serializeSignedCommit(
    { tree, parents: [], author: who, committer: who, message: `${message}\n` },
    key,
  );
  const sha = gitRun(dir, ["hash-object", "-t", "commit", "-w", "--stdin"], Buffer.from(commit)).trim();
  gitRun(dir, ["update-ref", "refs/heads/main", sha]);
  return { dir, sha };
}
