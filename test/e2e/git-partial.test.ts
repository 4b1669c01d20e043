/**
 * Partial and shallow clones with the real `git` binary against the running hub, over protocol v2 and v0:
 * `--filter` (blob:none, blob:limit, tree:0) with blobs and trees fetched on demand afterwards, and the
 * shallow boundary drawn by date (`--shallow-since`), by ref (`--shallow-exclude`) and relative to the
 * client's own (`--deepen`). Each repository is an asset created over REST.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type AssetRepo, createAssetRepo, gitRunner } from "./support/git-cli";
import { client, type Session, uniqueName } from "./support/hub-client";

const run = promisify(execFile);
const hubUrl = inject("hubUrl");
const hub = client(hubUrl);
let work: string;
let protocolVersion = "2";
const {
  env: gitEnv,
  git,
  gitFails,
  commitFile,
} = gitRunner(
  () => work,
  () => ({ "protocol.version": protocolVersion }),
);

let owner: Session;
let tenantId: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "agent-hub-git-partial-e2e-"));
  owner = await hub.signUp("Partial Clone Owner");
  tenantId = (await hub.createTenant(owner)).id;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A repository, a token for it and a working clone to write history in. */
async function repoWithWriter(): Promise<{ repo: AssetRepo; secret: string; writer: string }> {
  const repo = await createAssetRepo(hubUrl, owner, tenantId);
  const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
  const writer = join(work, uniqueName("w"));
  await git(work, "clone", "-q", repo.url(secret), writer);
  return { repo, secret, writer };
}

/** Lines of git's output as a set, keeping those that start with `prefix`, without it. */
function idsAfter(output: string, prefix: string): Set<string> {
  return new Set(
    output
      .split("\n")
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.slice(prefix.length)),
  );
}

/** The objects a clone lacks (`?<id>` lines of rev-list --missing=print), without fetching them. */
async function missingObjects(dir: string): Promise<Set<string>> {
  return idsAfter(await git(dir, "rev-list", "--objects", "--all", "--missing=print"), "?");
}

/** What `filter` leaves out of the writer's history (`~<id>`), less what HEAD's checkout fetches again. */
async function expectedMissing(writer: string, filter: string): Promise<Set<string>> {
  const omitted = idsAfter(
    await git(writer, "rev-list", "--objects", "--all", `--filter=${filter}`, "--filter-print-omitted"),
    "~",
  );
  for (const id of (await git(writer, "ls-tree", "-r", "--format=%(objectname)", "HEAD")).split("\n")) {
    omitted.delete(id);
  }
  return omitted;
}

/** Four commits changing a README and a file two directories down, then one with a large file. */
async function writeHistory(writer: string) {
  await mkdir(join(writer, "src", "deep"), { recursive: true });
  for (let i = 0; i < 4; i++) {
    await writeFile(join(writer, "README.md"), `readme v${i}\n`);
    await writeFile(join(writer, "src", "deep", "code.txt"), `code v${i}\n`.repeat(10));
    await git(writer, "add", "-A");
    await git(writer, "commit", "-q", "-m", `version ${i}`);
  }
  await commitFile(writer, "big.bin", "x".repeat(3_000), "a large file");
  await commitFile(writer, "big.bin", "small now\n", "the large file shrinks");
  await git(writer, "push", "-q", "origin", "main");
}

/** A commit made on day `day` of January 2020 (noon UTC), for cutting history by date. */
async function commitOnDay(dir: string, day: number): Promise<string> {
  const date = `2020-01-${String(day).padStart(2, "0")} 12:00:00 +0000`;
  await writeFile(join(dir, "log.txt"), `day ${day}\n`);
  await git(dir, "add", "log.txt");
  await run("git", ["commit", "-q", "-m", `day ${day}`], {
    cwd: dir,
    env: { ...gitEnv(), GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
  });
  return git(dir, "rev-parse", "HEAD");
}

/** Six commits on days 1–6 pushed to main; returns them by day. */
async function datedHistory(writer: string): Promise<Record<number, string>> {
  const byDay: Record<number, string> = {};
  for (let day = 1; day <= 6; day++) byDay[day] = await commitOnDay(writer, day);
  await git(writer, "push", "-q", "origin", "main");
  return byDay;
}

const shallowFile = async (dir: string) => (await readFile(join(dir, ".git", "shallow"), "utf8")).trim().split("\n");

describe.each(["2", "0"])("partial and shallow clones, fetching with protocol v%s", (version) => {
  beforeAll(() => {
    protocolVersion = version;
  });

  it("clones with --filter=blob:none; the checkout, git log -p and later fetches get blobs on demand", async () => {
    const { repo, secret, writer } = await repoWithWriter();
    await writeHistory(writer);
    const partial = join(work, uniqueName("blobless"));
    await git(work, "clone", "-q", "--filter=blob:none", repo.url(secret), partial);
    expect(await git(partial, "config", "remote.origin.partialclonefilter")).toBe("blob:none");

    // Exactly the blobs of older versions are missing; the working tree is whole.
    const missing = await missingObjects(partial);
    expect(missing.size).toBeGreaterThan(0);
    expect(missing).toEqual(await expectedMissing(writer, "blob:none"));
    expect(await readFile(join(partial, "src", "deep", "code.txt"), "utf8")).toBe("code v3\n".repeat(10));
    expect(await readFile(join(partial, "big.bin"), "utf8")).toBe("small now\n");

    // Every old version shows in the history's patches, fetched as git reads them.
    const log = await git(partial, "log", "-p", "--format=%s");
    for (let i = 0; i < 4; i++) expect(log).toContain(`+readme v${i}`);
    expect(log).toContain(`+${"x".repeat(3_000)}`);
    expect(await missingObjects(partial)).toEqual(new Set());
    await git(partial, "fsck");

    // A later fetch keeps the filter and still serves what it left out on demand.
    const tip = await commitFile(writer, "README.md", "readme v4\n");
    await git(writer, "push", "-q", "origin", "main");
    await git(partial, "fetch", "-q", "origin");
    expect(await git(partial, "show", `${tip}:README.md`)).toBe("readme v4");

    // A filter and a depth together: one commit, its blobs fetched by the checkout.
    const both = join(work, uniqueName("shallow-blobless"));
    await git(work, "clone", "-q", "--depth=1", "--filter=blob:none", repo.url(secret), both);
    expect(await git(both, "rev-list", "--count", "HEAD")).toBe("1");
    expect(await readFile(join(both, "README.md"), "utf8")).toBe("readme v4\n");
    expect(await missingObjects(both)).toEqual(new Set());
  });

  it("clones with --filter=tree:0 and --filter=blob:limit=1k", async () => {
    const { repo, secret, writer } = await repoWithWriter();
    await writeHistory(writer);

    const treeless = join(work, uniqueName("treeless"));
    await git(work, "clone", "-q", "--filter=tree:0", repo.url(secret), treeless);
    const missingTrees = await missingObjects(treeless);
    const omitted = await expectedMissing(writer, "tree:0");
    expect(missingTrees.size).toBeGreaterThan(0);
    for (const id of missingTrees) expect(omitted.has(id)).toBe(true);
    expect(await readFile(join(treeless, "README.md"), "utf8")).toBe("readme v3\n");
    expect(await git(treeless, "ls-tree", "-r", "--name-only", "HEAD~3")).toContain("src/deep/code.txt");
    expect(await git(treeless, "log", "-p", "--format=%s")).toContain("+code v0");

    // Only the large blob of an older commit is left out.
    const limited = join(work, uniqueName("limited"));
    await git(work, "clone", "-q", "--filter=blob:limit=1k", repo.url(secret), limited);
    const missing = await missingObjects(limited);
    expect(missing).toEqual(new Set([await git(writer, "rev-parse", "HEAD~1:big.bin")]));
    expect(missing).toEqual(await expectedMissing(writer, "blob:limit=1024"));
    expect(await git(limited, "show", "HEAD~1:big.bin")).toBe("x".repeat(3_000));
  });

  it("refuses, even to a partial clone, a blob of a ref the token hides or of no ref at all", async () => {
    const { repo, secret, writer } = await repoWithWriter();
    await commitFile(writer, "public.txt", "public\n");
    await git(writer, "checkout", "-q", "-b", "secret");
    await commitFile(writer, "secret.txt", "only on the hidden branch\n");
    const secretBlob = await git(writer, "rev-parse", "HEAD:secret.txt");
    await git(writer, "checkout", "-q", "-b", "gone", "main");
    await commitFile(writer, "gone.txt", "pushed, then its branch deleted\n");
    const goneBlob = await git(writer, "rev-parse", "HEAD:gone.txt");
    await git(writer, "push", "-q", "origin", "main", "secret", "gone");
    await git(writer, "push", "-q", "origin", ":gone");

    const mainOnly = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`, { refPattern: "refs/heads/main" });
    const partial = join(work, uniqueName("partial"));
    await git(work, "clone", "-q", "--filter=blob:none", repo.url(mainOnly), partial);
    expect(await gitFails(partial, "cat-file", "-p", secretBlob)).toContain(`not our ref ${secretBlob}`);
    const full = join(work, uniqueName("partial-full"));
    await git(work, "clone", "-q", "--filter=blob:none", repo.url(secret), full);
    expect(await gitFails(full, "cat-file", "-p", goneBlob)).toContain(`not our ref ${goneBlob}`);
    expect(await git(full, "cat-file", "-p", "HEAD:public.txt")).toBe("public");
  });

  it("refuses a filter it does not serve with a message git prints", async () => {
    const { repo, secret } = await repoWithWriter();
    const refused = await gitFails(
      work,
      "clone",
      "--filter=object:type=blob",
      repo.url(secret),
      join(work, uniqueName("x")),
    );
    expect(refused).toContain(
      "remote error: upload-pack: filter 'object:type=blob' is not supported; use blob:none, blob:limit=<n> or tree:<depth>",
    );
  });

  it("clones --shallow-since a date, deepens by date and by --deepen", async () => {
    const { repo, secret, writer } = await repoWithWriter();
    const day = await datedHistory(writer);
    const shallow = join(work, uniqueName("since"));
    await git(work, "clone", "-q", "--shallow-since=2020-01-04 00:00:00 +0000", repo.url(secret), shallow);
    expect(await git(shallow, "rev-list", "--count", "HEAD")).toBe("3");
    expect(await shallowFile(shallow)).toEqual([day[4]]);
    await git(shallow, "fsck");

    await git(shallow, "fetch", "-q", "--shallow-since=2020-01-02 00:00:00 +0000", "origin");
    expect(await git(shallow, "rev-list", "--count", "origin/main")).toBe("5");
    expect(await shallowFile(shallow)).toEqual([day[2]]);

    await git(shallow, "fetch", "-q", "--deepen=1", "origin");
    expect(await git(shallow, "rev-list", "--count", "origin/main")).toBe("6");
    expect(await shallowFile(shallow)).toEqual([day[1]]);
    await git(shallow, "fsck");

    // A date after every commit selects nothing: git says so.
    const none = await gitFails(
      work,
      "clone",
      "--shallow-since=2030-01-01",
      repo.url(secret),
      join(work, uniqueName("n")),
    );
    expect(none).toContain("no commits selected for shallow requests");
  });

  it("clones --shallow-exclude a tag or a branch; an unknown ref is refused", async () => {
    const { repo, secret, writer } = await repoWithWriter();
    const day = await datedHistory(writer);
    await git(writer, "tag", "-a", "v2", "-m", "day two", day[2] as string);
    await git(writer, "branch", "old", day[3] as string);
    await git(writer, "push", "-q", "origin", "v2", "old");

    const byTag = join(work, uniqueName("not-tag"));
    await git(work, "clone", "-q", "--shallow-exclude=v2", repo.url(secret), byTag);
    expect(await git(byTag, "rev-list", "--count", "HEAD")).toBe("4");
    expect(await shallowFile(byTag)).toEqual([day[3]]);

    const byBranch = join(work, uniqueName("not-branch"));
    await git(work, "clone", "-q", "--shallow-exclude=old", repo.url(secret), byBranch);
    expect(await git(byBranch, "rev-list", "--count", "HEAD")).toBe("3");
    expect(await shallowFile(byBranch)).toEqual([day[4]]);
    await git(byBranch, "fsck");

    const unknown = await gitFails(
      work,
      "clone",
      "--shallow-exclude=nope",
      repo.url(secret),
      join(work, uniqueName("u")),
    );
    expect(unknown).toContain("deepen-not nope: no such ref");
  });

  it("deepens a --depth clone relative to its boundary with --deepen", async () => {
    const { repo, secret, writer } = await repoWithWriter();
    const day = await datedHistory(writer);
    const shallow = join(work, uniqueName("deepen"));
    await git(work, "clone", "-q", "--depth=2", repo.url(secret), shallow);
    expect(await shallowFile(shallow)).toEqual([day[5]]);
    await git(shallow, "fetch", "-q", "--deepen=2", "origin");
    expect(await git(shallow, "rev-list", "--count", "origin/main")).toBe("4");
    expect(await shallowFile(shallow)).toEqual([day[3]]);
    await git(shallow, "fsck");
  });
});
