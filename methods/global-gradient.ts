import type { PruningMethod } from "./types.js";
import { BLALOCK_2020 } from "./citations.js";
import { SCORE_DATA_PARAMS, weightTimesGradient } from "./scores.js";

/**
 * Global gradient-magnitude pruning, ShrinkBench's `GlobalMagGrad` (Blalock et al. 2020, "What is the State of Neural
 * Network Pruning?", MLSys; code JJGO/shrinkbench, strategies/magnitude.py): importance |w · ∂L/∂w|, the first-order
 * change of the loss when w is zeroed, with one threshold over all prunable tensors (weights and, when prunable,
 * biases pooled together). ∂L/∂w is the gradient of the mean cross-entropy over one shuffled training batch of 128
 * by default (ShrinkBench's `next(iter(train_dl))`), the same batch for every run of a seed, with the model in train
 * mode (batch norm on batch statistics, as after ShrinkBench's `model.train()`; running statistics left unchanged).
 * `batches` > 1 averages the gradients of several batches. One-shot: prune after pretraining, then fine-tune.
 */
export const globalGradient: PruningMethod = {
  name: "global-gradient",
  summary: "Remove the smallest |w * dL/dw| under one threshold across all layers (ShrinkBench GlobalMagGrad)",
  paper: BLALOCK_2020,
  params: SCORE_DATA_PARAMS,
  needs: { gradients: true },
  distribution: () => "global",
  schedule: () => ({ kind: "one-shot" }),
  score: weightTimesGradient,
};
