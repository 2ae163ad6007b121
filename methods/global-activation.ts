import type { PruningMethod } from "./types.js";
import { BLALOCK_2020 } from "./citations.js";
import { SCORE_DATA_PARAMS, weightTimesActivation } from "./scores.js";

/**
 * Global activation-weighted magnitude pruning, ShrinkBench's `GlobalMagAct` (Blalock et al. 2020, MLSys; code
 * JJGO/shrinkbench, strategies/magnitude.py and `activation_importance` in strategies/utils.py): importance
 * |w| × mean |a| of the input unit w reads (a conv's input channel, broadcast over the kernel; a dense layer's input
 * feature), biases by the mean over the layer's input units; one threshold over all prunable tensors. Activations are
 * the layer inputs on `batches` × `batch_size` training images (default one batch of 128, ShrinkBench's), averaged
 * over images and spatial positions, in train mode, the same images for every run of a seed.
 *
 * Where it departs from ShrinkBench's code, on purpose: ShrinkBench takes |batch mean of a| per position, we take the
 * mean of |a| (they differ only where inputs can be negative: the first layer's normalised pixels); and ShrinkBench
 * forgets to divide a conv bias's activation by the spatial size (it weights conv biases by H·W, so a global threshold
 * never removes them), which we do not copy.
 */
export const globalActivation: PruningMethod = {
  name: "global-activation",
  summary: "Remove the smallest |w| x mean|input activation| under one threshold across all layers (ShrinkBench GlobalMagAct)",
  paper: BLALOCK_2020,
  params: SCORE_DATA_PARAMS,
  needs: { activations: true },
  distribution: () => "global",
  schedule: () => ({ kind: "one-shot" }),
  score: weightTimesActivation,
};
