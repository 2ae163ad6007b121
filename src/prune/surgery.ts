/**
 * Pruning and splicing with hysteresis thresholds while training (the "surgery" schedule; Guo, Yao, Chen, "Dynamic
 * Network Surgery for Efficient DNNs", NIPS 2016, and their Caffe layers CConvolution / CInnerProduct). Pure: no
 * tfjs. Every tensor has a band (lo, hi] in score units around a centre m = max(μ + c·σ, 0): an active weight whose
 * score falls to lo = lower·m or below is pruned, a pruned one whose score rises above hi = upper·m is spliced back,
 * and one inside the band keeps its state. μ and σ are the mean and standard deviation of a layer's nonzero scores
 * (its kernel and bias pooled, as the authors' layers pool weights and biases), taken once when the surgery starts.
 *
 * c is the schedule's or solved from the run's target (`targetCut`): scores standardised per layer,
 * z = (s/lower − μ)/σ, are cut at the target density under the method's distribution, and c is the largest z cut —
 * one c for every layer under "global" (the paper's one hyperparameter), one per tensor under "layer" or "erk".
 * Since s ≤ lower·(μ + cσ) exactly when z ≤ c, the band rule applied to the dense weights at that moment prunes what
 * the cut pruned (ties aside).
 */
import { allocateMasks, erkDensities, type Distribution } from "./allocate.js";
import type { Schedule } from "./schedules.js";

export type SurgerySchedule = Extract<Schedule, { kind: "surgery" }>;

/** A tensor under surgery: its scores now (higher survives), current mask, and the layer whose statistics it shares. */
export interface SurgeryTensor {
  name: string;
  layer: string;
  scores: Float32Array;
  mask: Float32Array;
  /** Needed by "erk" (see allocateMasks). */
  shape?: readonly number[];
}

export interface Moments { mu: number; sigma: number }

/** Prune where the score is <= lo, splice where it is > hi. */
export interface Band { lo: number; hi: number }

/**
 * μ and σ of the nonzero scores of each layer (the authors count a weight only when it is nonzero: a layer pruned
 * before the surgery starts is described by its survivors). σ is the population standard deviation.
 */
export function layerMoments(tensors: readonly SurgeryTensor[]): Map<string, Moments> {
  const sums = new Map<string, { s: number; s2: number; n: number }>();
  for (const t of tensors) {
    const acc = sums.get(t.layer) ?? { s: 0, s2: 0, n: 0 };
    for (const x of t.scores) {
      if (x === 0) continue;
      acc.s += x;
      acc.s2 += x * x;
      acc.n++;
    }
    sums.set(t.layer, acc);
  }
  return new Map([...sums].map(([layer, { s, s2, n }]) => {
    const mu = n > 0 ? s / n : 0;
    return [layer, { mu, sigma: n > 0 ? Math.sqrt(Math.max(0, s2 / n - mu * mu)) : 0 }];
  }));
}

/** The band of centre max(μ + cσ, 0); c = −∞ (nothing of the tensor was cut) gives the centre 0: only zeros are pruned. */
export function bandOf(m: Moments, c: number, schedule: Pick<SurgerySchedule, "lower" | "upper">): Band {
  const centre = c === -Infinity ? 0 : Math.max(m.mu + c * m.sigma, 0);
  return { lo: schedule.lower * centre, hi: schedule.upper * centre };
}

/**
 * One band update of a mask: active and <= lo → 0, pruned and > hi → 1, anything else unchanged. Returns a new mask,
 * or `mask` itself when nothing changes (most updates late in the surgery: the caller then has nothing to upload).
 */
export function bandUpdate(mask: Float32Array, scores: Float32Array, band: Band): Float32Array {
  const { lo, hi } = band;
  const next = new Float32Array(mask.length);
  let changed = 0;
  // Branch-free (masks are exactly 0/1): a mask's pattern is as good as random, and branches on it cost 2x here.
  for (let i = 0; i < mask.length; i++) {
    const m = mask[i], s = scores[i];
    const v = m * +(s > lo) + (1 - m) * +(s > hi);
    next[i] = v;
    changed += +(v !== m);
  }
  return changed === 0 ? mask : next;
}

/** The probability (1 + γt)^−power that a layer's mask is updated before step t (counted from the surgery's start). */
export function updateProbability(schedule: SurgerySchedule, t: number): number {
  return Math.pow(1 + schedule.gamma * t, -schedule.power);
}

/**
 * Whether a layer updates its mask before step t, given its uniform draw r in [0, 1): the authors' test,
 * (1 + γt)^−power > r and t < iter_stop. Every layer draws its own r at every step (each of their layers calls
 * rand() in its own forward pass), so layers update independently.
 */
export function updatesAt(schedule: SurgerySchedule, t: number, r: number): boolean {
  return t < schedule.stop && updateProbability(schedule, t) > r;
}

/**
 * The step at which the surgery ends with its exact cut (`cutToDensity`): iter_stop, or the end of a phase of
 * `totalSteps` steps that stops earlier. Steps count from the phase's start; step t's update comes before its forward pass.
 */
export function surgeryEnd(schedule: SurgerySchedule, totalSteps: number): number {
  return Math.min(schedule.stop, totalSteps);
}

/** Scores standardised by their layer's moments: z = (s/lower − μ)/σ, so that s <= lower·(μ + cσ) exactly when z <= c. */
export function standardized(t: SurgeryTensor, m: Moments, lower: number): Float32Array {
  const sigma = m.sigma > 0 ? m.sigma : 1;
  return t.scores.map((s) => (s / lower - m.mu) / sigma);
}

/**
 * The surgery's first cut, at the run's target: keep `density` of the weights by standardised score under
 * `distribution` (exact counts, ties by position: allocateMasks), and each tensor's band from the c that cut solves
 * (one c for all under "global", the largest z each tensor lost under "layer" and "erk").
 */
export function targetCut(
  tensors: readonly SurgeryTensor[], moments: ReadonlyMap<string, Moments>, density: number, distribution: Distribution,
  schedule: Pick<SurgerySchedule, "lower" | "upper">,
): { masks: Map<string, Float32Array>; bands: Map<string, Band> } {
  const z = tensors.map((t) => standardized(t, moments.get(t.layer)!, schedule.lower));
  const masks = allocateMasks(tensors.map((t, k) => ({ name: t.name, scores: z[k], mask: t.mask, shape: t.shape })), density, distribution);
  const lost = tensors.map((t, k) => {
    const next = masks.get(t.name)!;
    let c = -Infinity;
    for (let i = 0; i < next.length; i++) if (next[i] === 0 && t.mask[i] === 1 && z[k][i] > c) c = z[k][i];
    return c;
  });
  const shared = Math.max(...lost);
  const bands = new Map(tensors.map((t, k) => [t.name, bandOf(moments.get(t.layer)!, distribution === "global" ? shared : lost[k], schedule)]));
  return { masks, bands };
}

/**
 * The surgery's last cut: the fewest changes that bring the masks to `density` under `distribution` (the same
 * counts as allocateMasks: round(d·n) over all tensors, per tensor, or per tensor at ERK densities). Where more
 * weights are active than that, the active ones with the lowest scores are pruned; where fewer, the pruned ones with
 * the highest scores are spliced back. `scores` are comparable across the tensors pooled (the standardised ones under
 * "global"); ties go to the earlier tensor, then position.
 */
export function cutToDensity(tensors: readonly SurgeryTensor[], density: number, distribution: Distribution): Map<string, Float32Array> {
  if (!(density >= 0 && density <= 1)) throw new Error(`density ${density} outside [0, 1]`);
  const pools = distribution === "global" ? [tensors.map((_, k) => k)] : tensors.map((_, k) => [k]);
  const size = (k: number) => tensors[k].scores.length;
  const perTensor = distribution === "erk" ? erkDensities(tensors.map((t) => t.shape ?? [t.scores.length]), density) : tensors.map(() => density);
  const keeps = distribution === "global"
    ? [Math.round(density * tensors.reduce((n, t) => n + t.scores.length, 0))]
    : tensors.map((t, k) => Math.round(perTensor[k] * size(k)));
  const out = new Map(tensors.map((t) => [t.name, new Float32Array(t.mask.length)]));
  pools.forEach((pool, p) => {
    const entries: Array<{ k: number; i: number }> = [];
    for (const k of pool) {
      for (let i = 0; i < size(k); i++) {
        if (Number.isNaN(tensors[k].scores[i])) throw new Error(`${tensors[k].name}: score ${i} is NaN`);
        entries.push({ k, i });
      }
    }
    const active = (e: { k: number; i: number }) => (tensors[e.k].mask[e.i] === 1 ? 1 : 0);
    entries.sort((a, b) => active(b) - active(a) || tensors[b.k].scores[b.i] - tensors[a.k].scores[a.i] || a.k - b.k || a.i - b.i);
    for (const e of entries.slice(0, keeps[p])) out.get(tensors[e.k].name)![e.i] = 1;
  });
  return out;
}
