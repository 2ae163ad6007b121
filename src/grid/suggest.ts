/** "Did you mean" suggestions for near-miss names. */

/** Edit distance with adjacent transpositions counted as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  let prev2: number[] = new Array(m + 1).fill(0);
  let prev: number[] = Array.from({ length: m + 1 }, (_, j) => j);
  let cur: number[] = new Array(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m];
}

/**
 * The candidate closest to `input` (case-insensitive), or null when none is close enough to be a plausible typo.
 * Ties go to the earlier candidate.
 */
export function didYouMean(input: string, candidates: readonly string[]): string | null {
  const needle = input.toLowerCase();
  const limit = Math.max(2, Math.ceil(needle.length / 3));
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(needle, c.toLowerCase());
    if (d < bestD && d <= limit && d < Math.max(needle.length, c.length)) {
      best = c;
      bestD = d;
    }
  }
  if (best !== null || needle.length < 3) return best;
  // A truncated name ("sched" for "schedule") is far in edit distance but an obvious near miss.
  return candidates.find((c) => c.toLowerCase().startsWith(needle)) ?? null;
}

/** `unknown <what> "<input>"<context>; did you mean "<x>"? valid: a, b, c` */
export function unknownNameMessage(what: string, input: string, valid: readonly string[], context = ""): string {
  const guess = didYouMean(input, valid);
  const list = valid.length > 0 ? valid.join(", ") : "(none)";
  return `unknown ${what} ${JSON.stringify(input)}${context}; ${guess !== null ? `did you mean ${JSON.stringify(guess)}? ` : ""}valid: ${list}`;
}
