/**
 * Generates the benchmark's source repository with `git fast-import`: a tree of a few hundred text files in
 * nested directories plus a few dozen binary files, and a long history where each commit edits a few text
 * files (small line edits, which delta well) and now and then replaces a binary with incompressible bytes
 * (which make up most of the packed size). Seeded, so every run builds the same contents.
 *
 * Two refs: `main` (the history) and `next` (`main` plus a few more commits, for the incremental push).
 */
import { spawn } from "node:child_process";
import type { Writable } from "node:stream";

export type GenerateOptions = {
  commits: number;
  nextCommits: number;
  textFiles: number;
  binaryFiles: number;
  /** Chance that a commit also replaces one binary file. */
  binaryChance: number;
  binaryBytes: [min: number, max: number];
  seed?: number;
};

/**
 * The benchmarks' repository: 320 text files and 40 binaries, a binary replaced in about one commit in eight
 * (at 2,000 commits it packs to 27.8 MB). `bench:git` and `bench:git:memory` push the same shape.
 */
export function benchHistory(commits: number, nextCommits: number): GenerateOptions {
  return {
    commits,
    nextCommits,
    textFiles: 320,
    binaryFiles: 40,
    binaryChance: 0.12,
    binaryBytes: [48 * 1024, 160 * 1024],
  };
}

/** mulberry32: small, fast, seeded. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const bytes = (n: number) => {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = Math.floor(next() * 4294967296);
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  };
  return { next, int, pick, bytes };
}

const WORDS = [
  "const",
  "let",
  "return",
  "await",
  "async",
  "function",
  "if",
  "else",
  "for",
  "of",
  "new",
  "this",
  "tenant",
  "agent",
  "asset",
  "grant",
  "principal",
  "token",
  "session",
  "policy",
  "request",
  "response",
  "result",
  "error",
  "value",
  "items",
  "index",
  "count",
  "limit",
  "offset",
  "cursor",
  "options",
  "config",
  "handler",
  "router",
  "schema",
  "parse",
  "validate",
  "encode",
  "decode",
  "resolve",
  "reject",
  "filter",
  "map",
  "reduce",
  "push",
  "pop",
  "slice",
  "join",
  "split",
  "trim",
  "length",
  "=",
  "===",
  "!==",
  "=>",
  "+",
  "-",
  "*",
  "&&",
  "||",
  "(",
  ")",
  "{",
  "}",
  "[",
  "]",
  ";",
  ",",
  ".",
  "null",
  "undefined",
  "true",
  "false",
] as const;
const MODULES = ["core", "api", "auth", "billing", "catalog", "storage", "ui", "util", "workers", "jobs"];
const SUBDIRS = ["model", "service", "routes", "internal", "helpers", "views", "adapters"];

/** Seeded lines of source-like text. */
function textSource(rnd: ReturnType<typeof prng>) {
  const line = () => {
    const indent = "  ".repeat(rnd.int(0, 3));
    const n = rnd.int(3, 10);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(rnd.pick(WORDS));
    return `${indent}${words.join(" ")}`;
  };
  const paths = (count: number) => {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const mod = MODULES[i % MODULES.length];
      const sub = SUBDIRS[Math.floor(i / MODULES.length) % SUBDIRS.length];
      const deep = i % 3 === 0 ? `/v${i % 4}` : "";
      out.push(`src/${mod}/${sub}${deep}/file-${i}.ts`);
    }
    return out;
  };
  return { line, paths };
}

/** A `git fast-import` process and the commands the generators write to it. */
function fastImport(gitDir: string, env: NodeJS.ProcessEnv, rnd: ReturnType<typeof prng>) {
  const child = spawn("git", ["fast-import", "--quiet", "--done"], {
    cwd: gitDir,
    env,
    stdio: ["pipe", "inherit", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}\n${stderr}`)),
    );
  });
  const out = child.stdin as Writable;
  out.on("error", () => {}); // the exit handler reports the cause
  const write = async (chunk: string | Buffer) => {
    if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
  };
  const data = async (content: Buffer | string) => {
    const buf = typeof content === "string" ? Buffer.from(content) : content;
    await write(`data ${buf.length}\n`);
    await write(buf);
    await write("\n");
  };
  const modify = async (path: string, content: Buffer | string) => {
    await write(`M 100644 inline ${path}\n`);
    await data(content);
  };
  let time = 1_700_000_000;
  let mark = 0;
  const people = ["Ada <ada@example.test>", "Lin <lin@example.test>", "Sam <sam@example.test>"];
  /** A commit on `ref`; `from` starts the ref there, `merges` adds parents. Returns its mark. */
  const commit = async (
    ref: string,
    message: string,
    from: string | null,
    body: () => Promise<void>,
    merges: readonly string[] = [],
  ) => {
    mark++;
    time += rnd.int(60, 7200);
    const who = rnd.pick(people);
    await write(`commit ${ref}\nmark :${mark}\nauthor ${who} ${time} +0000\ncommitter ${who} ${time} +0000\n`);
    await data(message);
    if (from) await write(`from ${from}\n`);
    for (const parent of merges) await write(`merge ${parent}\n`);
    await body();
    await write("\n");
    return `:${mark}`;
  };
  /** An annotated tag on a commit mark. */
  const tag = async (name: string, target: string, message: string) => {
    time += 1;
    await write(`tag ${name}\nfrom ${target}\ntagger ${rnd.pick(people)} ${time} +0000\n`);
    await data(message);
  };
  /** Forgets a branch (a merged topic): a ref reset to nothing is not written. */
  const drop = async (ref: string) => {
    await write(`reset ${ref}\n\n`);
  };
  const done = async () => {
    await write("done\n");
    out.end();
    await exited;
  };
  return { modify, commit, tag, drop, done };
}

/** Text files edited a few lines at a time, binaries replaced now and then, written through fast-import. */
function repositoryWriter(
  gitDir: string,
  env: NodeJS.ProcessEnv,
  options: Omit<GenerateOptions, "commits" | "nextCommits">,
) {
  const rnd = prng(options.seed ?? 20261125);
  const { line, paths } = textSource(rnd);
  const textPaths = paths(options.textFiles);
  const binaryPaths: string[] = [];
  for (let i = 0; i < options.binaryFiles; i++) binaryPaths.push(`assets/${MODULES[i % 5]}/blob-${i}.bin`);
  const texts = new Map<string, string[]>();
  const importer = fastImport(gitDir, env, rnd);

  const editText = async (path: string) => {
    const lines = texts.get(path) ?? [];
    const edits = rnd.int(1, 4);
    for (let e = 0; e < edits; e++) {
      const at = rnd.int(0, Math.max(0, lines.length - 1));
      const kind = rnd.next();
      if (kind < 0.5 || lines.length < 20) lines.splice(at, 0, ...Array.from({ length: rnd.int(1, 6) }, line));
      else if (kind < 0.8) lines[at] = line();
      else lines.splice(at, rnd.int(1, 3));
    }
    texts.set(path, lines);
    await importer.modify(path, `${lines.join("\n")}\n`);
  };
  /** A few text edits and, by chance, a new binary. */
  const changeSet = async () => {
    const n = rnd.int(1, 4);
    for (let i = 0; i < n; i++) await editText(rnd.pick(textPaths));
    if (binaryPaths.length > 0 && rnd.next() < options.binaryChance) {
      await importer.modify(rnd.pick(binaryPaths), rnd.bytes(rnd.int(...options.binaryBytes)));
    }
  };
  /** The first commit: every file. */
  const initialImport = (ref: string) =>
    importer.commit(ref, "Initial import", null, async () => {
      for (const path of textPaths) {
        const lines = Array.from({ length: rnd.int(40, 160) }, line);
        texts.set(path, lines);
        await importer.modify(path, `${lines.join("\n")}\n`);
      }
      for (const path of binaryPaths) await importer.modify(path, rnd.bytes(rnd.int(4096, 16384)));
    });
  return { ...importer, rnd, changeSet, initialImport };
}

/** `main` (the history) and `next` (`main` plus `nextCommits` more, for the incremental push). */
export async function generateRepository(gitDir: string, options: GenerateOptions, env: NodeJS.ProcessEnv) {
  const w = repositoryWriter(gitDir, env, options);
  let tip = await w.initialImport("refs/heads/main");
  for (let i = 1; i < options.commits; i++) tip = await w.commit("refs/heads/main", `Change ${i}`, null, w.changeSet);
  let nextFrom: string | null = tip;
  for (let i = 0; i < options.nextCommits; i++) {
    await w.commit("refs/heads/next", `Follow-up ${i + 1}`, nextFrom, w.changeSet);
    nextFrom = null;
  }
  await w.done();
}

export type TaggedOptions = {
  commits: number;
  /** An annotated tag every this many commits on main (a release). */
  tagEvery: number;
  /** A topic branch merged into main (with a merge commit) every this many commits. */
  mergeEvery: number;
  /** Long-lived branches besides main, each a few commits off main. */
  branches: number;
  textFiles: number;
  /** Commits after main's tip, on `refs/heads/step-<n>` for each n: what incremental fetches bring. */
  steps: readonly number[];
  seed?: number;
};

/**
 * A repository shaped like a real project's: a main line with topic branches merged back, an annotated
 * release tag every few commits, a few long-lived branches, text only. Also `refs/heads/step-<n>`: main
 * plus n more commits, one ref per step (each step continues the previous one).
 */
export async function generateTaggedRepository(gitDir: string, options: TaggedOptions, env: NodeJS.ProcessEnv) {
  const w = repositoryWriter(gitDir, env, {
    textFiles: options.textFiles,
    binaryFiles: 0,
    binaryChance: 0,
    binaryBytes: [0, 0],
    seed: options.seed ?? 20261202,
  });
  let tip = await w.initialImport("refs/heads/main");
  let release = 0;
  for (let i = 1; i < options.commits; i++) {
    if (i % options.mergeEvery === 0) {
      // A topic branch of a few commits from main, merged back with a merge commit.
      const topic = `refs/heads/topic-${i}`;
      let topicTip = await w.commit(topic, `Start topic ${i}`, tip, w.changeSet);
      for (let j = w.rnd.int(1, 4); j > 0; j--) topicTip = await w.commit(topic, `Topic ${i} work`, null, w.changeSet);
      tip = await w.commit("refs/heads/main", `Merge topic ${i}`, tip, w.changeSet, [topicTip]);
      await w.drop(topic);
    } else {
      tip = await w.commit("refs/heads/main", `Change ${i}`, tip, w.changeSet);
    }
    if (i % options.tagEvery === 0) {
      release++;
      await w.tag(
        `v${Math.floor(release / 100)}.${Math.floor(release / 10) % 10}.${release % 10}`,
        tip,
        `Release ${release}\n`,
      );
    }
  }
  for (let b = 0; b < options.branches; b++) {
    let from: string | null = tip;
    for (let j = w.rnd.int(1, 5); j > 0; j--) {
      await w.commit(`refs/heads/maint-${b}`, `Maintenance ${b}`, from, w.changeSet);
      from = null;
    }
  }
  let stepTip = tip;
  let made = 0;
  for (const step of [...options.steps].sort((a, b) => a - b)) {
    for (; made < step; made++)
      stepTip = await w.commit(`refs/heads/step-${step}`, `Step ${made + 1}`, stepTip, w.changeSet);
  }
  await w.done();
}
