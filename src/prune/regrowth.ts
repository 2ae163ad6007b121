/**
 * Drop and grow at constant density, for dynamic sparse training. Pure: no tfjs. The growth criterion is part of a
 * method (RigL grows where the dense gradient is largest, SET at random); the drop criterion is its score.
 */

export type Regrowth = "gradient" | "random";

/**
 * Of the active weights of `mask`, drop the `k` with the lowest `dropScores`; then grow the `k` inactive ones with
 * the highest `growScores` (weights dropped in this very update may be grown again, as in RigL's code). Ties go to the
 * earlier position. Returns the new mask and the positions grown (1 where a weight became active).
 */
export function dropAndGrow(mask: Float32Array, dropScores: Float32Array, growScores: Float32Array, k: number): { mask: Float32Array; grown: Float32Array } {
  const active: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i] === 1) active.push(i);
  const n = Math.min(k, active.length, mask.length - active.length + Math.min(k, active.length));
  const next = Float32Array.from(mask);
  active.sort((a, b) => dropScores[a] - dropScores[b] || a - b);
  for (let j = 0; j < n; j++) next[active[j]] = 0;
  const inactive: number[] = [];
  for (let i = 0; i < next.length; i++) if (next[i] === 0) inactive.push(i);
  inactive.sort((a, b) => growScores[b] - growScores[a] || a - b);
  const grown = new Float32Array(mask.length);
  for (let j = 0; j < n; j++) {
    next[inactive[j]] = 1;
    if (mask[inactive[j]] === 0) grown[inactive[j]] = 1;
  }
  return { mask: next, grown };
}
