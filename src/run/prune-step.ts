/**
 * One pruning step of a run: the method scores the prunable tensors as they are now, the budget is spread by the
 * method's distribution, and the masks shrink (a pruned weight never returns, unless the schedule remasks). The
 * capabilities a score function may ask for (training gradients, the data-free path gradient) are built here, only
 * when the method `needs` them; a method with a `compensate` hook then moves the surviving weights
 * (src/run/compensate.ts). The engine never asks which method it runs.
 */
import type { PrunableTensor, PruningMethod, TrainingTracker } from "../../methods/types.js";
import type { HyperValue, PrunablePolicy } from "../core/types.js";
import { allocateMasks } from "../prune/allocate.js";
import { prunableTensors } from "../prune/policy.js";
import type { StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
import { compensateAndMask } from "./compensate.js";
import { scoreContext } from "./score-context.js";

export interface PruneStepInput {
  model: Model;
  masks: MaskSet;
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  prunable: PrunablePolicy;
  /** Fraction of the prunable weights to keep after this step. */
  density: number;
  /** Training data, for methods that need gradients or activations; the seed picks the batches they see. */
  train: StagedSplit;
  seed: number;
  /** Distinguishes the random draws of successive steps of one run (round k of an iterative schedule). */
  step: number;
  /** Score uniformly at random instead of by the method (the initial mask of dynamic sparse training). */
  randomMask?: boolean;
  /**
   * Activating-while-Pruning: `fraction` of the weights surviving before this step is removed among the surviving
   * negative weights with the smallest movement |w − start| (start: the weights when the training before this step
   * began), the rest of the step by the method; the step still ends at `density`.
   */
  activate?: { fraction: number; start: ReadonlyMap<string, Float32Array> };
  /**
   * Rank every prunable weight, pruned ones included (a gradual schedule's `remask`): a pruned weight whose score
   * climbs back above the threshold returns, at 0. Absent: masks only shrink.
   */
  remask?: boolean;
  /** The run's training tracker, handed to the score function (ScoreContext.tracker). */
  tracker?: TrainingTracker;
}

/** The prunable tensors as they are now: values, shape and current mask (all ones before the first prune). */
export function prunableState(model: Model, masks: MaskSet, prunable: PrunablePolicy): PrunableTensor[] {
  return prunableTensors(model.layers, prunable).map((r) => {
    const v = model.params.get(r.name)!;
    return { ...r, shape: v.shape, values: v.dataSync() as Float32Array, mask: masks.values(r.name) ?? new Float32Array(v.size).fill(1) };
  });
}

/** Prune `model` to `density` in place: masks replaced (monotonically) and applied to the weights. */
export async function pruneStep(o: PruneStepInput): Promise<void> {
  const state = prunableState(o.model, o.masks, o.prunable);
  const tensors = o.remask ? state.map((t) => ({ ...t, mask: new Float32Array(t.mask.length).fill(1) })) : state;
  const ctx = scoreContext({ method: o.method, params: o.params, tensors, model: o.model, train: o.train, seed: o.seed, step: o.step, tracker: o.tracker });
  // A dynamic schedule starts from a random mask (SET, RigL); its scores decide only what is dropped later.
  const scores = o.randomMask ? new Map(tensors.map((t) => [t.name, t.values.map(() => ctx.random())])) : await o.method.score(ctx);
  const total = tensors.reduce((n, t) => n + t.values.length, 0);
  const survivors = tensors.reduce((n, t) => n + count(t.mask), 0);
  const target = Math.round(o.density * total);
  const apCount = o.activate ? Math.min(Math.round(o.activate.fraction * survivors), Math.max(0, survivors - target)) : 0;
  // Without AP the method prunes to `density` itself (the same call as ever, so results stay bit-identical).
  const next = allocateMasks(
    tensors.map((t) => ({ name: t.name, scores: scores.get(t.name)!, mask: t.mask, shape: t.shape })),
    apCount > 0 ? (target + apCount) / total : o.density, o.method.distribution(o.params), { minDensity: o.method.minDensity?.(o.params) },
  );
  if (apCount > 0) activateWhilePruning(tensors, next, scores, o.activate!.start, target);
  for (const t of tensors) o.masks.set(t.name, next.get(t.name)!, t.shape);
  // The random initial mask of a dynamic schedule is no choice of the method: nothing to compensate for.
  if (o.randomMask) o.masks.apply(o.model.params);
  else await compensateAndMask(o.method, ctx, next, o.params, o.model, o.masks);
}

function count(mask: Float32Array): number {
  let n = 0;
  for (const m of mask) if (m !== 0) n++;
  return n;
}

/**
 * AP's part of a step (Liu, Ghosh, Tan, Motani, arXiv 2212.06145): after the method's share, remove weights until
 * `target` survive, choosing among the surviving negative weights the ones whose movement |w − w_0| since the
 * training began is smallest (after a ReLU inputs are >= 0, so dropping negative incoming weights raises
 * pre-activations and wakes dead units). One global choice over the prunable tensors, ties by tensor order then
 * index. Should fewer negative survivors exist than AP's share, the rest goes by the method's score, lowest first,
 * so the step's total never changes. Only the prunable policy's tensors are touched (the authors' code also prunes
 * batch-norm γ, a defect this avoids).
 */
function activateWhilePruning(
  tensors: readonly PrunableTensor[], next: Map<string, Float32Array>, scores: ReadonlyMap<string, Float32Array>,
  start: ReadonlyMap<string, Float32Array>, target: number,
): void {
  let remove = [...next.values()].reduce((n, m) => n + count(m), 0) - target;
  const candidates: Array<{ t: number; i: number; key: number }> = [];
  tensors.forEach((tensor, t) => {
    const mask = next.get(tensor.name)!;
    const w0 = start.get(tensor.name);
    if (!w0) throw new Error(`no weights at the round's start for ${tensor.name}`);
    for (let i = 0; i < mask.length; i++) if (mask[i] !== 0 && tensor.values[i] < 0) candidates.push({ t, i, key: Math.abs(tensor.values[i] - w0[i]) });
  });
  const byKey = (a: { t: number; i: number; key: number }, b: { t: number; i: number; key: number }) => a.key - b.key || a.t - b.t || a.i - b.i;
  for (const c of candidates.sort(byKey)) {
    if (remove <= 0) return;
    next.get(tensors[c.t].name)![c.i] = 0;
    remove--;
  }
  const rest: Array<{ t: number; i: number; key: number }> = [];
  tensors.forEach((tensor, t) => {
    const mask = next.get(tensor.name)!;
    const s = scores.get(tensor.name)!;
    for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) rest.push({ t, i, key: s[i] });
  });
  for (const c of rest.sort(byKey)) {
    if (remove <= 0) return;
    next.get(tensors[c.t].name)![c.i] = 0;
    remove--;
  }
}
