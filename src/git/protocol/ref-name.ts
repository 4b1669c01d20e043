import { hasControlChar } from "./capabilities";

/**
 * The parts of git's check-ref-format that matter for refs a client pushes. Returns why the name is
 * refused, or null when it is acceptable.
 */
export const MAX_REF_NAME_LENGTH = 1024;

export function refNameProblem(ref: string): string | null {
  if (!ref.startsWith("refs/")) return "ref name must start with refs/";
  if (ref.length > MAX_REF_NAME_LENGTH) return "ref name is too long";
  // Control characters, space and the characters git reserves for revision syntax and globs.
  if (hasControlChar(ref, true) || /[~^:?*[\\]/.test(ref)) return "ref name contains a forbidden character";
  if (ref.includes("..")) return "ref name contains ..";
  if (ref.includes("@{")) return "ref name contains @{";
  if (ref.endsWith("/") || ref.includes("//")) return "ref name has an empty component";
  if (ref.endsWith(".")) return "ref name ends with .";
  for (const component of ref.split("/")) {
    if (component.startsWith(".")) return "ref name component starts with .";
    if (component.endsWith(".lock")) return "ref name component ends with .lock";
  }
  return null;
}

export function isValidRefName(ref: string): boolean {
  return refNameProblem(ref) === null;
}

/** git's reading of a short ref name (`ref_rev_parse_rules`), in its order of preference. */
const SHORT_NAME_RULES = [
  (n: string) => n,
  (n: string) => `refs/${n}`,
  (n: string) => `refs/tags/${n}`,
  (n: string) => `refs/heads/${n}`,
  (n: string) => `refs/remotes/${n}`,
  (n: string) => `refs/remotes/${n}/HEAD`,
];

/** The refs among `names` that `name` (full or short, as `v1` or `main`) can mean. */
export function refsMatching(name: string, names: readonly string[]): string[] {
  const known = new Set(names);
  return [...new Set(SHORT_NAME_RULES.map((rule) => rule(name)))].filter((full) => known.has(full));
}
