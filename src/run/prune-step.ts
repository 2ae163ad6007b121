/**
 * One pruning step of a run: the method scores the prunable tensors as they are now, the budget is spread by the
 * method's distribution, and the masks shrink (a pruned weight never returns). The capabilities a score function may
 * ask for (training gradients, the data-free path gradient) are built here, only when the method `needs` them; the
 * engine never asks which method it runs.
 */
import type { PrunableTensor, PruningMethod } from "../../methods/types.js";
import type { HyperValue, PrunablePolicy } from "../core/types.js";
import { allocateMasks } from "../prune/allocate.js";
import { prunableTensors } from "../prune/policy.js";
import type { StagedSplit } from "../train/loop.js";
import type { MaskSet } from "../train/masks.js";
import type { Model } from "../train/model.js";
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
  const tensors = prunableState(o.model, o.masks, o.prunable);
  const ctx = scoreContext({ method: o.method, params: o.params, tensors, model: o.model, train: o.train, seed: o.seed, step: o.step });
  // A dynamic schedule starts from a random mask (SET, RigL); its scores decide only what is dropped later.
  const scores = o.randomMask ? new Map(tensors.map((t) => [t.name, t.values.map(() => ctx.random())])) : await o.method.score(ctx);
  const next = allocateMasks(
    tensors.map((t) => ({ name: t.name, scores: scores.get(t.name)!, mask: t.mask, shape: t.shape })),
    o.density, o.method.distribution(o.params), { minDensity: o.method.minDensity?.(o.params) },
  );
  for (const t of tensors) o.masks.set(t.name, next.get(t.name)!, t.shape);
  o.masks.apply(o.model.params);
}
