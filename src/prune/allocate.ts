/**
 * Turns scores into masks under a keep budget. Pure: no tfjs. Exactly round(keep * n) weights survive per
 * budget (ties broken by position, so results are deterministic), and a weight already pruned never returns.
 */

/**
 * How the keep budget is spread: one threshold over all prunable tensors ("global") or the same fraction in every
 * tensor ("layer").
 */
export type Distribution = "global" | "layer";

export interface ScoredTensor {
  name: string;
  scores: Float32Array;
  /** Current mask (1 alive, 0 pruned). */
  mask: Float32Array;
}

export function allocateMasks(tensors: readonly ScoredTensor[], keepFraction: number, distribution: Distribution): Map<string, Float32Array> {
  if (!(keepFraction >= 0 && keepFraction <= 1)) throw new Error(`keep fraction ${keepFraction} outside [0, 1]`);
  if (distribution === "layer") {
    return new Map(tensors.map((t) => [t.name, keepTop([t], Math.round(keepFraction * t.scores.length)).get(t.name)!]));
  }
  const total = tensors.reduce((n, t) => n + t.scores.length, 0);
  return keepTop(tensors, Math.round(keepFraction * total));
}

/** Keep the `keep` highest-scoring alive weights across `tensors`. */
function keepTop(tensors: readonly ScoredTensor[], keep: number): Map<string, Float32Array> {
  const total = tensors.reduce((n, t) => n + t.scores.length, 0);
  const flat = new Float32Array(total);
  let offset = 0;
  for (const t of tensors) {
    if (t.scores.length !== t.mask.length) throw new Error(`${t.name}: ${t.scores.length} scores for ${t.mask.length} weights`);
    for (let i = 0; i < t.scores.length; i++) {
      const s = t.scores[i];
      if (Number.isNaN(s)) throw new Error(`${t.name}: score ${i} is NaN`);
      flat[offset + i] = t.mask[i] === 0 ? -Infinity : s;
    }
    offset += t.scores.length;
  }
  const keepMask = new Float32Array(total);
  if (keep > 0) {
    const sorted = Float32Array.from(flat).sort();
    const threshold = sorted[total - keep];
    let above = 0;
    for (let i = 0; i < total; i++) if (flat[i] > threshold) above++;
    let tiesLeft = keep - above;
    for (let i = 0; i < total; i++) {
      if (flat[i] === -Infinity) continue;
      if (flat[i] > threshold) keepMask[i] = 1;
      else if (flat[i] === threshold && tiesLeft > 0) { keepMask[i] = 1; tiesLeft--; }
    }
  }
  const out = new Map<string, Float32Array>();
  offset = 0;
  for (const t of tensors) {
    out.set(t.name, keepMask.slice(offset, offset + t.scores.length));
    offset += t.scores.length;
  }
  return out;
}
