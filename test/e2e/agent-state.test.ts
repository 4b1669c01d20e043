/**
 * Agent state end to end, with the hub and the reference sidecar as separate processes and stock git as
 * the client: a skill attached to an agent reaches the sidecar's workspace and the prompt; the sidecar
 * keeps its state in git and pushes it when stopped; the instance's `state.git` clones with a token and
 * agrees with the REST views; a restore commits an earlier tree; the timeline lists the turn and the mail.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { gitEnv as sharedGitEnv } from "./support/git-cli";
import { client, uniqueName } from "./support/hub-client";
import {
  instanceEvents,
  instancePath,
  type RuntimeTenant,
  runSidecar,
  setUpRuntimeTenant,
  until,
  waitOnline,
} from "./support/runtime-tenant";

const run = promisify(execFile);
const hubUrl = inject("hubUrl");
const hub = client(hubUrl);
const SKILL =
  "---\nname: summarize\ndescription: Summarize a text in three lines\n---\n\nRead it, then write three lines.\n";

describe("an agent's state in git", () => {
  let s: RuntimeTenant;
  let sidecar: ReturnType<typeof runSidecar>;
  let work: string;
  let skillName: string;
  let instanceId: string;
  const base = () => `/api/tenants/${s.tenantId}`;
  const gitEnv = () => sharedGitEnv(work);
  const git = async (cwd: string, ...args: string[]) =>
    (await run("git", args, { cwd, env: gitEnv(), maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
  const url = (secret: string, path: string) => {
    const { port } = new URL(hubUrl);
    return `http://git:${secret}@127.0.0.1:${port}${base()}${path}`;
  };

  beforeAll(async () => {
    s = await setUpRuntimeTenant(hubUrl);
    work = join(s.stateDir, "work");
    await mkdir(work, { recursive: true });
    // A skill asset with content pushed by stock git, attached to the agent.
    skillName = uniqueName("notes");
    const asset = await hub.ok("POST", `${base()}/assets`, s.owner.token, { kind: "skill", name: skillName });
    const assetToken = await hub.gitToken(s.owner, s.tenantId, `asset:${asset.id}`);
    const skillDir = join(work, "skill");
    await git(work, "clone", "-q", url(assetToken, `/assets/skill/${skillName}.git`), skillDir);
    await mkdir(join(skillDir, "summarize"));
    await writeFile(join(skillDir, "summarize", "SKILL.md"), SKILL);
    await git(skillDir, "add", ".");
    await git(skillDir, "commit", "-q", "-m", "Add summarize");
    await git(skillDir, "push", "-q", "origin", "main");
    await hub.ok("POST", `${base()}/agents/definitions/${s.agentId}/assets`, s.owner.token, { assetId: asset.id });

    sidecar = runSidecar(hubUrl, s);
    await waitOnline(hubUrl, s);
    const launched = await hub.call("POST", `${base()}/agents/instances`, s.owner.token, { agentId: s.agentId });
    expect(launched.status, JSON.stringify(launched.body) + sidecar.output()).toBe(201);
    instanceId = launched.body.id;
  }, 90_000);

  afterAll(async () => {
    await sidecar?.stop();
    if (s) await rm(s.stateDir, { recursive: true, force: true });
  });

  it("runs, pushes its state when stopped, and clones as a repository git and REST agree on", async () => {
    // The skill is in the sidecar's workspace and announced in the prompt of the deploy tree.
    const workspaceSkill = join(s.stateDir, instanceId, "workspace", "skills", skillName, "summarize", "SKILL.md");
    expect(await readFile(workspaceSkill, "utf8")).toBe(SKILL);
    const prompt = await hub.ok("GET", `${base()}/agents/${s.agentId}/data/deploy/prompt.md`, s.owner.token);
    expect(prompt.content).toContain(`<name>${skillName}/summarize</name>`);
    expect(prompt.content).toContain(`<path>workspace/skills/${skillName}/summarize/</path>`);
    // The sidecar verified the hub's signature on the deploy commit and took it.
    const deployBranch = await hub.ok("GET", `${base()}/agents/${s.agentId}/branches`, s.owner.token);
    const record = JSON.parse(await readFile(join(s.stateDir, `${instanceId}.json`), "utf8"));
    expect(record.deployRef).toBe(deployBranch.data[0].lastCommitRef);

    // One conversation turn by mail.
    const sse = instanceEvents(hubUrl, s, instanceId);
    await sse.open();
    await hub.ok("POST", `${instancePath(s, instanceId)}/mail`, s.owner.token, { content: "remember the milk" });
    await sse.waitFor((m) => m.some((x) => x.data.type === "connector.reply"), 30_000);
    await sse.waitFor((m) => m.filter((x) => x.data.type === "mail.delivered").length >= 2, 30_000);
    await sse.close();

    const stopped = await hub.call("DELETE", instancePath(s, instanceId), s.owner.token);
    expect(stopped.status).toBe(204);

    const secret = await hub.gitToken(s.owner, s.tenantId, `agent-state:${instanceId}`);
    const clone = join(work, "state");
    await until("the state to be pushed", async () => {
      const branches = await hub.ok("GET", `${base()}/agents/${instanceId}/branches`, s.owner.token);
      return branches.data.length > 0;
    });
    await git(work, "clone", "-q", url(secret, `/agents/instances/${instanceId}/state.git`), clone);
    await git(clone, "fsck", "--strict");
    const files = (await git(clone, "ls-tree", "-r", "--name-only", "HEAD")).split("\n");
    expect(files).toContain("turns.jsonl");
    expect(files.filter((f) => /^state\/mail\/[0-9a-f]{8}\/\d{4}-in\.eml$/.test(f))).toHaveLength(1);
    expect(files.filter((f) => /^state\/mail\/[0-9a-f]{8}\/\d{4}-out\.eml$/.test(f))).toHaveLength(1);
    const turns = (await readFile(join(clone, "turns.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(turns.map((t) => t.role)).toEqual(["user", "assistant"]);
    expect(JSON.stringify(turns[0].content)).toContain("remember the milk");
    const subjects = (await git(clone, "log", "--format=%s")).split("\n");
    expect(subjects).toContain("checkpoint: inference-done");
    expect(subjects.some((m) => m.startsWith("Record inbound mail <"))).toBe(true);
    expect(subjects.some((m) => m.startsWith("Record outbound mail <"))).toBe(true);

    // Read-only: the advertisement for a push is a 403 (its body says why; git shows the status).
    await writeFile(join(clone, "metadata.json"), "{}\n");
    await git(clone, "commit", "-q", "-am", "tamper");
    const push = await run("git", ["push", "origin", "HEAD:main"], { cwd: clone, env: gitEnv() }).catch(
      (err: { stderr: string }) => err,
    );
    expect("stderr" in push ? push.stderr : "").toContain("The requested URL returned error: 403");
    const refused = await fetch(
      `${hubUrl}${base()}/agents/instances/${instanceId}/state.git/info/refs?service=git-receive-pack`,
    );
    expect(await refused.text()).toBe("# service=git-receive-pack\n0000ERR agent-state is read-only over HTTP\n");
    await git(clone, "reset", "-q", "--hard", "origin/main");

    // REST agrees with git: files, history, one commit, branches.
    const data = await hub.ok("GET", `${base()}/agents/${instanceId}/data?limit=100`, s.owner.token);
    expect(data.data.filter((f: { type: string }) => f.type === "file").map((f: { path: string }) => f.path)).toEqual(
      [...files].sort(),
    );
    const history = await hub.ok("GET", `${base()}/agents/${instanceId}/history?limit=100`, s.owner.token);
    const log = (await git(clone, "log", "--format=%H %s")).split("\n");
    expect(history.data.map((h: { ref: string; message: string }) => `${h.ref} ${h.message.split("\n")[0]}`)).toEqual(
      log,
    );
    const head = await git(clone, "rev-parse", "HEAD");
    const detail = await hub.ok("GET", `${base()}/agents/${instanceId}/history/${head}`, s.owner.token);
    const numstat = (await git(clone, "show", "--numstat", "--format=", head))
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("\t"))
      .map(([add, del, path]) => ({ path: path ?? "", additions: Number(add), deletions: Number(del) }));
    expect(
      detail.changes.map((c: { path: string; additions: number; deletions: number }) => ({
        path: c.path,
        additions: c.additions,
        deletions: c.deletions,
      })),
    ).toEqual(numstat.sort((a, b) => (a.path < b.path ? -1 : 1)));
    const branches = await hub.ok("GET", `${base()}/agents/${instanceId}/branches`, s.owner.token);
    expect(branches.data).toEqual([expect.objectContaining({ name: "main", isCurrent: true, lastCommitRef: head })]);

    // Restore the first commit: a new commit whose tree is the first one's.
    const first = log[log.length - 1]?.split(" ")[0] as string;
    const restored = await hub.ok("POST", `${base()}/agents/${instanceId}/history/${first}/restore`, s.owner.token, {});
    await git(clone, "pull", "-q", "--ff-only");
    expect(await git(clone, "rev-parse", "HEAD")).toBe(restored.ref);
    expect(await git(clone, "rev-parse", "HEAD^{tree}")).toBe(await git(clone, "rev-parse", `${first}^{tree}`));
    expect(await git(clone, "rev-parse", "HEAD^")).toBe(head);

    // The timeline: the inbound mail, the turn, the reply, in order, each with its place in the stream.
    const timeline = await hub.ok("GET", `${instancePath(s, instanceId)}/timeline`, s.owner.token);
    expect(timeline.gaps).toEqual([]);
    expect(
      timeline.data.map((i: { kind: string; direction?: string }) =>
        i.kind === "mail" ? `mail:${i.direction}` : "turn",
      ),
    ).toEqual(["mail:in", "turn", "mail:out"]);
    for (const item of timeline.data) expect(item.cursor).toEqual(expect.any(Number));
    expect(timeline.data[1]).toMatchObject({ source: "both", status: "completed" });
    expect(timeline.data[1].content.length).toBeGreaterThan(0);
  });
});
