/**
 * Turns scores into masks under a keep budget. Pure: no tfjs. Exactly round(keep * n) weights survive per
 * budget (ties broken by position, so results are deterministic), and a weight already pruned never returns.
 */

/**
 * How the keep budget is spread (jaxpruner's sparsity_distributions): one threshold over all prunable tensors
 * ("global"), the same fraction in every tensor ("layer"), or Erdős–Rényi-Kernel ("erk", Evci et al. 2020, RigL):
 * density of a tensor ∝ (sum of its dimensions) / (product of its dimensions), scaled to the budget, tensors that
 * would exceed density 1 kept dense and the scale solved again for the rest.
 */
export type Distribution = "global" | "layer" | "erk";

export interface ScoredTensor {
  name: string;
  scores: Float32Array;
  /** Current mask (1 alive, 0 pruned). */
  mask: Float32Array;
  /** Needed by "erk" (kernel shape, e.g. [kh, kw, in, out] or [in, out]). */
  shape?: readonly number[];
}

export interface AllocateOptions {
  /**
   * Every tensor keeps at least this fraction of its weights (the highest-scoring), so a global threshold cannot
   * empty a layer and cut the network (layer collapse, Tanaka et al. 2020); the rest of the budget is spread as asked.
   */
  minDensity?: number;
}

export function allocateMasks(tensors: readonly ScoredTensor[], keepFraction: number, distribution: Distribution, options: AllocateOptions = {}): Map<string, Float32Array> {
  if (!(keepFraction >= 0 && keepFraction <= 1)) throw new Error(`keep fraction ${keepFraction} outside [0, 1]`);
  if (distribution === "layer") {
    return new Map(tensors.map((t) => [t.name, keepTop([t], Math.round(keepFraction * t.scores.length)).get(t.name)!]));
  }
  if (distribution === "erk") {
    const densities = erkDensities(tensors.map((t) => t.shape ?? [t.scores.length]), keepFraction);
    return new Map(tensors.map((t, i) => [t.name, keepTop([t], Math.round(densities[i] * t.scores.length)).get(t.name)!]));
  }
  const total = tensors.reduce((n, t) => n + t.scores.length, 0);
  const minDensity = options.minDensity ?? 0;
  if (minDensity <= 0) return keepTop(tensors, Math.round(keepFraction * total));
  // The floor first, each tensor's best; then the rest of the budget under one threshold over what is left.
  const floor = new Map(tensors.map((t) => [t.name, keepTop([t], Math.ceil(minDensity * t.scores.length)).get(t.name)!]));
  const floorCount = [...floor.values()].reduce((n, m) => n + m.reduce((a, b) => a + b, 0), 0);
  const budget = Math.round(keepFraction * total);
  if (floorCount > budget) throw new Error(`min density ${minDensity} in every tensor keeps ${floorCount} weights, more than the budget of ${budget}`);
  const rest = keepTop(tensors.map((t) => ({ ...t, mask: t.mask.map((m, i) => (floor.get(t.name)![i] === 1 ? 0 : m)) })), budget - floorCount);
  return new Map(tensors.map((t) => [t.name, floor.get(t.name)!.map((f, i) => Math.max(f, rest.get(t.name)![i]))]));
}

/** ERK densities for tensors of these shapes, spending `keepFraction` of all their weights. */
export function erkDensities(shapes: readonly (readonly number[])[], keepFraction: number): number[] {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const raw = shapes.map((s, i) => s.reduce((a, b) => a + b, 0) / sizes[i]);
  const budget = keepFraction * sizes.reduce((a, b) => a + b, 0);
  const dense = new Set<number>();
  for (;;) {
    const denseWeights = [...dense].reduce((n, i) => n + sizes[i], 0);
    const weighted = raw.reduce((n, r, i) => (dense.has(i) ? n : n + r * sizes[i]), 0);
    const scale = weighted > 0 ? (budget - denseWeights) / weighted : 0;
    const over = raw.findIndex((r, i) => !dense.has(i) && r * scale > 1);
    if (over < 0) return raw.map((r, i) => (dense.has(i) ? 1 : Math.max(0, r * scale)));
    // The tensor with the largest raw density saturates first; keep it dense and solve again.
    let most = over;
    raw.forEach((r, i) => { if (!dense.has(i) && r > raw[most]) most = i; });
    dense.add(most);
  }
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
