/**
 * Grant patterns: a strict, anchored glob where `*` matches any run of characters (':' included, possibly
 * empty) and every other character is literal. The pieces must match the target in order without sharing
 * characters, so "a*ab" does not match "ab".
 */

const STAR = 42; // "*"
/** Added to a pattern with no `*`, so an exact pattern beats any wildcard, however long. */
const EXACT_BONUS = 1000;

export function matchPattern(pattern: string, target: string): boolean {
  const firstStar = pattern.indexOf("*");
  if (firstStar < 0) return pattern === target;
  if (pattern.length === 1) return true;
  return matchGlob(pattern, target, firstStar);
}

/**
 * Greedy two-pointer wildcard match, no regex. On a mismatch it backtracks only to the latest star, letting it
 * swallow one more character; earlier stars never need revisiting because any later placement of the
 * remaining literals is reachable from the latest star. Worst case O(pattern × target), no allocation.
 */
function matchGlob(pattern: string, target: string, firstStar: number): boolean {
  if (firstStar > target.length) return false;
  for (let i = 0; i < firstStar; i++) {
    if (pattern.charCodeAt(i) !== target.charCodeAt(i)) return false;
  }
  const patternLength = pattern.length;
  const targetLength = target.length;
  let p = firstStar;
  let t = firstStar;
  let starAt = -1;
  let resumeAt = 0;
  while (t < targetLength) {
    const c = p < patternLength ? pattern.charCodeAt(p) : -1;
    if (c === STAR) {
      starAt = p++;
      resumeAt = t;
    } else if (c === target.charCodeAt(t)) {
      p++;
      t++;
    } else if (starAt >= 0) {
      p = starAt + 1;
      t = ++resumeAt;
    } else {
      return false;
    }
  }
  while (p < patternLength && pattern.charCodeAt(p) === STAR) p++;
  return p === patternLength;
}

/** "*" → 0; otherwise the count of literal characters, plus 1000 when the pattern has no `*`. */
export function specificity(pattern: string): number {
  let stars = 0;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern.charCodeAt(i) === STAR) stars++;
  }
  const literals = pattern.length - stars;
  return stars === 0 ? literals + EXACT_BONUS : literals;
}

/** A grant's specificity: its resource pattern's plus its action pattern's. */
export function grantSpecificity(resource: string, action: string): number {
  return specificity(resource) + specificity(action);
}
