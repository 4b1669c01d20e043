/**
 * The real `git` binary against the running hub: clone, push, fetch, shallow, branch deletion, refused
 * pushes and tokens, concurrent pushes. Each repository is an asset created over REST.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAssetRepo, gitRunner } from "./support/git-cli";
import { client, type Session, uniqueName } from "./support/hub-client";

const run = promisify(execFile);
const hubUrl = inject("hubUrl");
const hub = client(hubUrl);
let work: string;

/** The wire protocol git asks for on fetches (its default is 2); the suite runs once per version. */
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
const createRepo = (owner: Session, tenantId: string) => createAssetRepo(hubUrl, owner, tenantId);

let owner: Session;
let tenantId: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "agent-hub-git-e2e-"));
  owner = await hub.signUp("Git Owner");
  tenantId = (await hub.createTenant(owner)).id;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.each(["2", "0"])("git over smart HTTP, fetching with protocol v%s", (version) => {
  beforeAll(() => {
    protocolVersion = version;
  });

  it(`speaks protocol v${version} for fetches, v0 for pushes`, async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    const traced = async (...args: string[]) =>
      (await run("git", args, { cwd: work, env: { ...gitEnv(), GIT_TRACE_PACKET: "1" } })).stderr;
    const clone = await traced("clone", "-q", repo.url(secret), a);
    if (version === "2") {
      expect(clone).toContain("< version 2");
      expect(clone).toContain("> command=ls-refs");
      expect(clone).toContain("> command=fetch");
      expect(clone).toMatch(/< [0-9a-f]{40} HEAD symref-target:refs\/heads\/main/);
    } else {
      expect(clone).not.toContain("version 2");
      expect(clone).toMatch(/< [0-9a-f]{40} HEAD.*symref=HEAD:refs\/heads\/main/);
    }
    await commitFile(a, "v.txt", "v\n");
    const push = await run("git", ["push", "origin", "main"], {
      cwd: a,
      env: { ...gitEnv(), GIT_TRACE_PACKET: "1" },
    });
    expect(push.stderr).not.toContain("version 2");
    expect(push.stderr).toContain("report-status");
  });

  it("clones the genesis commit, pushes, clones again and passes fsck", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(secret), a);
    expect(await readFile(join(a, ".gitignore"), "utf8")).toContain("node_modules/");
    expect(await git(a, "log", "--format=%s")).toBe("Initialize repository");

    for (let i = 0; i < 5; i++) await commitFile(a, `file-${i}.txt`, `content ${i}\n`.repeat(100 + i));
    await git(a, "checkout", "-q", "-b", "feature");
    const featureTip = await commitFile(a, "feature.txt", "feature\n");
    await git(a, "tag", "-a", "v1", "-m", "release 1");
    await git(a, "push", "-q", "origin", "main", "feature", "v1");

    const b = join(work, uniqueName("b"));
    await git(work, "clone", "-q", repo.url(secret), b);
    expect(await git(b, "rev-list", "--count", "HEAD")).toBe("6");
    expect(await git(b, "rev-parse", "origin/feature")).toBe(featureTip);
    expect(await git(b, "cat-file", "-t", "v1")).toBe("tag");
    await git(b, "fsck", "--full", "--strict");
    expect(await readFile(join(b, "file-3.txt"), "utf8")).toBe("content 3\n".repeat(103));
  });

  it("signs the genesis commit with the hub key: git verify-commit accepts it", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(secret), a);
    const key = (await (await fetch(`${hubUrl}/api/signing-key`)).json()) as { openssh: string; publicKey: string };
    expect(key.openssh).toMatch(/^ssh-ed25519 \S+ /);

    const trusted = join(work, uniqueName("allowed-signers"));
    await writeFile(trusted, `hub@agent-hub.local namespaces="git" ${key.openssh}\n`);
    const ssh = ["-c", "gpg.format=ssh", "-c", `gpg.ssh.allowedSignersFile=${trusted}`];
    await git(a, ...ssh, "verify-commit", "HEAD");
    expect(await git(a, "cat-file", "commit", "HEAD")).toContain("gpgsig -----BEGIN SSH SIGNATURE-----");

    // Another key in the allowed signers: the same commit does not verify.
    const stranger = join(work, uniqueName("stranger"));
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    const strangerKey = (await readFile(`${stranger}.pub`, "utf8")).trim();
    await writeFile(trusted, `hub@agent-hub.local namespaces="git" ${strangerKey}\n`);
    await gitFails(a, ...ssh, "verify-commit", "HEAD");
  });

  it("takes a push larger than http.postBuffer (probe, then a chunked request body)", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("big"));
    await git(work, "clone", "-q", repo.url(secret), a);
    const { randomBytes } = await import("node:crypto");
    await writeFile(join(a, "blob.bin"), randomBytes(3 * 1024 * 1024));
    await git(a, "add", "blob.bin");
    await git(a, "commit", "-q", "-m", "big");
    await git(a, "push", "-q", "origin", "main");
    const b = join(work, uniqueName("bigclone"));
    await git(work, "clone", "-q", repo.url(secret), b);
    expect(await git(b, "rev-parse", "HEAD")).toBe(await git(a, "rev-parse", "HEAD"));
    await git(b, "fsck", "--full");
  });

  it("fetches only the new objects after new commits", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const writer = join(work, uniqueName("w"));
    await git(work, "clone", "-q", repo.url(secret), writer);
    for (let i = 0; i < 20; i++) await commitFile(writer, `f${i % 4}.txt`, `round ${i}\n`.repeat(50));
    await git(writer, "push", "-q", "origin", "main");

    const reader = join(work, uniqueName("r"));
    await git(work, "clone", "-q", repo.url(secret), reader);
    await git(writer, "rm", "-q", "f0.txt");
    await git(writer, "commit", "-q", "-m", "remove f0");
    const tip = await commitFile(writer, "new.txt", "brand new\n");
    await git(writer, "push", "-q", "origin", "main");

    // Unpacked into loose objects, the fetched pack is countable: 2 commits, 2 trees, 1 blob.
    const before = Number((await git(reader, "count-objects")).split(" ")[0]);
    await git(reader, "-c", "fetch.unpackLimit=1000000", "fetch", "-q", "origin");
    const after = Number((await git(reader, "count-objects")).split(" ")[0]);
    expect(after - before).toBe(5);
    expect(await git(reader, "rev-parse", "origin/main")).toBe(tip);
    await git(reader, "fsck", "--full");

    // A commit that is not a tip but is reachable from one can be fetched by id; an unknown id cannot.
    const older = await git(writer, "rev-parse", "HEAD~3");
    const fresh = join(work, uniqueName("byid"));
    await git(work, "init", "-q", fresh);
    await git(fresh, "fetch", "-q", repo.url(secret), older);
    expect(await git(fresh, "rev-parse", "FETCH_HEAD")).toBe(older);
    const unknown = await gitFails(fresh, "fetch", repo.url(secret), "1".repeat(40));
    expect(unknown).toMatch(/not our ref/);
  });

  it("with many tags and branches, advertises peeled tags and fetches a new commit in one round", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const writer = join(work, uniqueName("w"));
    await git(work, "clone", "-q", repo.url(secret), writer);
    // 120 commits, an annotated tag on every second one, a lightweight tag and a few branches.
    for (let i = 0; i < 120; i++) {
      await commitFile(writer, `f${i % 7}.txt`, `line ${i}\n`.repeat(20));
      if (i % 2 === 1) await git(writer, "tag", "-a", `v0.${i}`, "-m", `release ${i}`);
      if (i % 30 === 0) await git(writer, "branch", `maint-${i}`);
    }
    await git(writer, "tag", "light");
    await git(writer, "push", "-q", "origin", "--all");
    await git(writer, "push", "-q", "origin", "--tags");

    // Every annotated tag is advertised with the commit it peels to; the lightweight one is not peeled.
    const remote = await git(work, "ls-remote", "--tags", repo.url(secret));
    const lines = remote.split("\n");
    expect(lines.filter((l) => l.endsWith("^{}"))).toHaveLength(60);
    const peeledV1 = lines.find((l) => l.endsWith("refs/tags/v0.1^{}"))?.split("\t")[0];
    expect(peeledV1).toBe(await git(writer, "rev-parse", "v0.1^{commit}"));
    expect(lines.some((l) => l.endsWith("refs/tags/light^{}"))).toBe(false);

    const reader = join(work, uniqueName("r"));
    await git(work, "clone", "-q", repo.url(secret), reader);
    expect((await git(reader, "tag")).split("\n")).toHaveLength(61);
    const tip = await commitFile(writer, "new.txt", "brand new\n");
    await git(writer, "push", "-q", "origin", "main");

    // The client has 60 tags and 5 branches to offer as haves; the first round already shows the server
    // that the new commit's parent is common, so it answers ready (v2) or ACK … ready (v0) with the pack.
    const traced = await run("git", ["-c", "fetch.unpackLimit=1000000", "fetch", "origin"], {
      cwd: reader,
      env: { ...gitEnv(), GIT_TRACE_PACKET: "1" },
    });
    const rounds = traced.stderr.split("\n").filter((l) => /> (command=fetch|want [0-9a-f]{40})/.test(l));
    if (version === "2") {
      expect(traced.stderr).toMatch(/fetch< ready/);
      expect(rounds.filter((l) => l.includes("command=fetch"))).toHaveLength(1);
    } else {
      expect(traced.stderr).toMatch(/< ACK [0-9a-f]{40} ready/);
    }
    expect(await git(reader, "rev-parse", "origin/main")).toBe(tip);
    // Exactly what is new: the commit, its tree and the new blob.
    expect((await git(reader, "count-objects")).split(" ")[0]).toBe("3");
    await git(reader, "fsck", "--full");
  });

  it("serves a shallow clone", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const writer = join(work, uniqueName("w"));
    await git(work, "clone", "-q", repo.url(secret), writer);
    for (let i = 0; i < 6; i++) await commitFile(writer, "log.txt", `line ${i}\n`);
    await git(writer, "push", "-q", "origin", "main");

    const shallow = join(work, uniqueName("s"));
    await git(work, "clone", "-q", "--depth", "2", repo.url(secret), shallow);
    expect(await git(shallow, "rev-list", "--count", "HEAD")).toBe("2");
    expect(await readFile(join(shallow, ".git", "shallow"), "utf8")).toMatch(/^[0-9a-f]{40}\n$/);
    await git(shallow, "fsck");
    // Deepening the same clone later fetches the rest.
    await git(shallow, "fetch", "-q", "--unshallow", "origin");
    expect(await git(shallow, "rev-list", "--count", "HEAD")).toBe("7");
  });

  it("deletes a branch and refuses a non-fast-forward push", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(secret), a);
    await git(a, "checkout", "-q", "-b", "topic");
    await commitFile(a, "topic.txt", "topic\n");
    await git(a, "push", "-q", "origin", "topic");
    expect(await git(a, "ls-remote", "origin")).toContain("refs/heads/topic");
    await git(a, "push", "-q", "origin", ":topic");
    expect(await git(a, "ls-remote", "origin")).not.toContain("refs/heads/topic");

    // Rewrite main and push without --force: the client stops it; with --force the hub decides.
    await git(a, "checkout", "-q", "main");
    await commitFile(a, "one.txt", "one\n");
    await git(a, "push", "-q", "origin", "main");
    await git(a, "reset", "-q", "--hard", "HEAD~1");
    await commitFile(a, "two.txt", "two\n");
    const refused = await gitFails(a, "push", "origin", "main");
    expect(refused).toMatch(/non-fast-forward|fetch first|rejected/);
  });

  it("refuses a force push from a principal without manage on the repository", async () => {
    const repo = await createRepo(owner, tenantId);
    // A member with read and write on this asset only (no manage).
    const writer = await hub.signUp("Writer");
    const invited = await hub.ok<{ id: string }>("POST", `/api/tenants/${tenantId}/members/invite`, owner.token, {
      email: writer.email,
    });
    await hub.ok("POST", `/api/me/invitations/${invited.id}/accept`, writer.token);
    for (const action of ["read", "write"]) {
      await hub.ok("POST", `/api/tenants/${tenantId}/grants`, owner.token, {
        principalId: invited.id,
        resource: `asset:${repo.assetId}`,
        action,
        effect: "allow",
      });
    }
    const secret = await hub.gitToken(writer, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(secret), a);
    await commitFile(a, "x.txt", "x\n");
    await git(a, "push", "-q", "origin", "main");
    await git(a, "commit", "-q", "--amend", "-m", "rewritten");
    const refused = await gitFails(a, "push", "--force", "origin", "main");
    expect(refused).toMatch(/non-fast-forward/);
    // The ref did not move.
    expect(await git(a, "ls-remote", "origin", "refs/heads/main")).toContain(await git(a, "rev-parse", "HEAD@{1}"));
  });

  it("refuses a push outside the token's ref pattern and a token for another repository", async () => {
    const repo = await createRepo(owner, tenantId);
    const other = await createRepo(owner, tenantId);
    const limited = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`, {
      refPattern: "refs/heads/feature/*",
    });
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`)), a);
    await commitFile(a, "y.txt", "y\n");
    await git(a, "remote", "set-url", "origin", repo.url(limited));
    const refused = await gitFails(a, "push", "origin", "main");
    expect(refused).toMatch(/main -> main \(forbidden by the token's ref pattern\)/);
    await git(a, "push", "-q", "origin", "main:refs/heads/feature/ok");

    const wrongRepo = await hub.gitToken(owner, tenantId, `asset:${other.assetId}`);
    const denied = await gitFails(work, "ls-remote", repo.url(wrongRepo));
    expect(denied).toMatch(/403|Authentication failed|not allowed|denied/i);
  });

  it("serves only what the token's ref pattern shows: hidden refs and their objects stay hidden", async () => {
    const repo = await createRepo(owner, tenantId);
    const full = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(full), a);
    await git(a, "checkout", "-q", "-b", "secret");
    const secretTip = await commitFile(a, "secret.txt", "only on the hidden branch\n");
    await git(a, "push", "-q", "origin", "main", "secret");

    const mainOnly = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`, { refPattern: "refs/heads/main" });
    const listed = await git(work, "ls-remote", repo.url(mainOnly));
    expect(listed).toContain("refs/heads/main");
    expect(listed).not.toContain("secret");
    expect(listed).not.toContain(secretTip);

    const fresh = join(work, uniqueName("fresh"));
    await git(work, "init", "-q", fresh);
    const refused = await gitFails(fresh, "fetch", "-q", repo.url(mainOnly), secretTip);
    expect(refused).toContain(`not our ref ${secretTip}`);

    const b = join(work, uniqueName("b"));
    await git(work, "clone", "-q", repo.url(mainOnly), b);
    await gitFails(b, "cat-file", "-e", secretTip);
    await git(b, "fsck", "--full");
  });

  it("keeps the repository consistent under two concurrent pushes", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const clones = [join(work, uniqueName("c1")), join(work, uniqueName("c2"))];
    for (const dir of clones) await git(work, "clone", "-q", repo.url(secret), dir);
    await commitFile(clones[0] as string, "left.txt", "left\n".repeat(1000));
    await commitFile(clones[1] as string, "right.txt", "right\n".repeat(1000));
    const results = await Promise.allSettled(clones.map((dir) => git(dir, "push", "-q", "origin", "main")));
    const succeeded = results.filter((r) => r.status === "fulfilled").length;
    expect(succeeded).toBeGreaterThanOrEqual(1);

    const check = join(work, uniqueName("check"));
    await git(work, "clone", "-q", repo.url(secret), check);
    await git(check, "fsck", "--full");
    const files = (await git(check, "ls-files")).split("\n");
    // Exactly the pushes that succeeded are visible; the other one changed nothing.
    expect(files.filter((f) => f === "left.txt" || f === "right.txt")).toHaveLength(succeeded);
  });

  it("clones an empty repository after its only branch is deleted", async () => {
    const repo = await createRepo(owner, tenantId);
    const secret = await hub.gitToken(owner, tenantId, `asset:${repo.assetId}`);
    const a = join(work, uniqueName("a"));
    await git(work, "clone", "-q", repo.url(secret), a);
    await git(a, "push", "-q", "origin", ":main");
    const empty = join(work, uniqueName("empty"));
    const { stderr } = await run("git", ["clone", repo.url(secret), empty], { cwd: work, env: gitEnv() });
    expect(stderr).toMatch(/empty repository/);
    // And it can be pushed to from there.
    await commitFile(empty, "first.txt", "first\n");
    await git(empty, "push", "-q", "origin", "HEAD:refs/heads/main");
    expect(await git(empty, "ls-remote", "origin")).toContain("refs/heads/main");
  });

  it("answers 401 with a Basic challenge without credentials", async () => {
    const repo = await createRepo(owner, tenantId);
    const url = repo.url("x").replace("git:x@", "");
    const res = await fetch(`${url}/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic/);
  });
});
