/**
 * A run's cost and per-class results as metrics and rows: pure functions of what the runner measured, kept out of
 * execute-job.ts. Definitions are in src/metrics/names.ts (train_*, dense_pretrain_*) and src/core/types.ts
 * (ClassAccuracy).
 */
import type { LayerInfo } from "../archs/ops.js";
import type { ClassAccuracy } from "../core/types.js";
import type { Evaluation } from "../train/loop.js";
import { TRAIN_MACS_PER_FORWARD } from "../train/train-cost.js";
import type { DenseCost } from "./dense-cache.js";
import type { PhaseStep } from "./phase-plan.js";

/** Training on the way to one result: images, training MACs, seconds of the training steps. */
export interface PathCost { images: number; macs: number; seconds: number }

export const ZERO_COST: PathCost = Object.freeze({ images: 0, macs: 0, seconds: 0 });

/**
 * The dense pretraining a run is charged for. A plan that starts from the initial weights (prune at init, dynamic
 * sparse training) uses the dense model only as its baseline: nothing. Every other run prunes the trained dense
 * model and pays for all of it, whoever trained it (this run, a dense job, an earlier sweep). A checkpoint cached
 * before the cost was kept still tells images and MACs (every pretraining epoch sees the whole training split, with
 * no masks: `denseImages` × 3 × dense MACs), not seconds (NaN).
 */
export function attributedDenseCost(plan: readonly PhaseStep[], cost: DenseCost | null, denseImages: number, layers: readonly LayerInfo[]): PathCost {
  if (plan[0]?.kind === "rewind-to-init") return { ...ZERO_COST };
  if (cost) return { images: cost.images, macs: cost.macs, seconds: cost.seconds };
  const macsDense = layers.reduce((n, l) => n + l.macs, 0);
  return { images: denseImages, macs: denseImages * TRAIN_MACS_PER_FORWARD * macsDense, seconds: NaN };
}

export function costMetrics(own: PathCost, dense: PathCost): Record<string, number> {
  return {
    train_images: own.images, train_macs: own.macs, train_step_seconds: own.seconds,
    dense_pretrain_images: dense.images, dense_pretrain_macs: dense.macs, dense_pretrain_seconds: dense.seconds,
  };
}

/** The per-class rows of one result, from the evaluations that gave its top1_dense, top1_before and top1_after. */
export function classRows(names: readonly string[], evals: Record<ClassAccuracy["phase"], Evaluation>): ClassAccuracy[] {
  const out: ClassAccuracy[] = [];
  for (const phase of ["dense", "before", "after"] as const) {
    const { correct, count } = evals[phase].perClass;
    for (let label = 0; label < count.length; label++) {
      out.push({ phase, label, name: names[label] ?? "", correct: Math.round(correct[label]), count: Math.round(count[label]) });
    }
  }
  return out;
}
