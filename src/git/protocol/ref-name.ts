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
