/**
 * refPattern glob: literals match themselves, `*` matches any run within one `/` segment, `**` any run
 * including `/` (possibly empty); anchored at both ends. A run of three or more stars counts as `**`.
 * Matching is a linear-space dynamic programme, so no pattern can make it backtrack exponentially.
 */
type Token = { kind: "lit"; ch: string } | { kind: "star" } | { kind: "globstar" };

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; ) {
    if (pattern[i] === "*") {
      let j = i;
      while (pattern[j] === "*") j++;
      tokens.push(j - i >= 2 ? { kind: "globstar" } : { kind: "star" });
      i = j;
    } else {
      tokens.push({ kind: "lit", ch: pattern[i] as string });
      i++;
    }
  }
  return tokens;
}

export function compileRefPattern(pattern: string): (ref: string) => boolean {
  const tokens = tokenize(pattern);
  return (ref) => {
    // can[j]: the tokens consumed so far match ref[0..j).
    let can = new Array<boolean>(ref.length + 1).fill(false);
    can[0] = true;
    for (const t of tokens) {
      const next = new Array<boolean>(ref.length + 1).fill(false);
      if (t.kind === "lit") {
        for (let j = 0; j < ref.length; j++) if (can[j] && ref[j] === t.ch) next[j + 1] = true;
      } else {
        let reach = false;
        for (let j = 0; j <= ref.length; j++) {
          if (can[j]) reach = true;
          if (reach) next[j] = true;
          // A single star cannot extend across a slash.
          if (t.kind === "star" && ref[j] === "/") reach = false;
        }
      }
      can = next;
    }
    return can[ref.length] === true;
  };
}

export function matchRefPattern(pattern: string, ref: string): boolean {
  return compileRefPattern(pattern)(ref);
}
