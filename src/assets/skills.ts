/**
 * Skill assets: every top-level directory is one skill and carries a `SKILL.md` whose YAML frontmatter
 * names and describes it. A push that breaks this is refused before any ref moves.
 */
import { parse } from "yaml";
import { parseCommit, parseTree, treeEntryType } from "../git/objects/object";
import type { ObjectStore } from "../git/storage/object-store";

export type Skill = { name: string; description: string };

const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const RESERVED = new Set(["anthropic", "claude"]);
const FRONTMATTER = /^---\r?\n([\s\S]*?)\r?\n---(?:\r?\n|$)/;

/** Validates one `SKILL.md`; returns the skill or the reason it is refused. */
export function parseSkillManifest(directory: string, text: string): Skill | { error: string } {
  const match = FRONTMATTER.exec(text);
  if (!match) return { error: `${directory}/SKILL.md has no YAML frontmatter` };
  let data: unknown;
  try {
    data = parse(match[1] ?? "");
  } catch {
    return { error: `${directory}/SKILL.md frontmatter is not valid YAML` };
  }
  if (typeof data !== "object" || data === null) return { error: `${directory}/SKILL.md frontmatter is not a mapping` };
  const { name, description } = data as Record<string, unknown>;
  if (typeof name !== "string" || !KEBAB.test(name) || name.length > 64) {
    return { error: `${directory}/SKILL.md: name must be kebab-case, at most 64 characters` };
  }
  if (name !== directory) return { error: `${directory}/SKILL.md: name "${name}" must equal the directory name` };
  if (RESERVED.has(name)) return { error: `${directory}/SKILL.md: name "${name}" is reserved` };
  if (typeof description !== "string" || description.trim().length === 0 || description.length > 1024) {
    return { error: `${directory}/SKILL.md: description must be 1 to 1024 characters` };
  }
  if (/<[a-zA-Z/][^>]*>/.test(description))
    return { error: `${directory}/SKILL.md: description must not contain tags` };
  return { name, description };
}

export type TopLevelEntry = { name: string; isDirectory: boolean };

/**
 * Validates a skill repository's top level. `readSkillFile(dir)` returns the text of `<dir>/SKILL.md`, or
 * null when the directory has none.
 */
export async function validateSkillTree(
  entries: readonly TopLevelEntry[],
  readSkillFile: (directory: string) => Promise<string | null>,
): Promise<{ skills: Skill[] } | { error: string }> {
  const skills: Skill[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const text = await readSkillFile(entry.name);
    if (text === null) return { error: `${entry.name}/ has no SKILL.md` };
    const parsed = parseSkillManifest(entry.name, text);
    if ("error" in parsed) return parsed;
    skills.push(parsed);
  }
  return { skills };
}

/** The skills a commit's tree holds (every top-level directory with its `SKILL.md`), or why it is invalid. */
export async function skillsOfCommit(
  commitOid: string,
  store: ObjectStore,
): Promise<{ skills: Skill[] } | { error: string }> {
  const commit = parseCommit((await store.get(commitOid)).body);
  const root = parseTree((await store.get(commit.tree)).body);
  return validateSkillTree(
    root.map((e) => ({ name: e.name, isDirectory: treeEntryType(e.mode) === "tree" })),
    async (directory) => {
      const dir = root.find((e) => e.name === directory);
      if (!dir) return null;
      const file = parseTree((await store.get(dir.oid)).body).find((e) => e.name === "SKILL.md");
      if (!file || treeEntryType(file.mode) !== "blob") return null;
      return new TextDecoder().decode((await store.get(file.oid)).body);
    },
  );
}

/**
 * The skills rule for a pushed branch tip: every top-level directory of the commit's tree is a valid skill.
 * Returns why the commit is refused, or null.
 */
export async function checkSkillCommit(_ref: string, commitOid: string, store: ObjectStore): Promise<string | null> {
  const result = await skillsOfCommit(commitOid, store);
  return "error" in result ? `invalid skill: ${result.error}` : null;
}
