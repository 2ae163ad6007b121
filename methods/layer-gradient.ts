import type { PruningMethod } from "./types.js";
import { BLALOCK_2020 } from "./citations.js";
import { SCORE_DATA_PARAMS, weightTimesGradient } from "./scores.js";

/**
 * Layer-wise gradient-magnitude pruning, ShrinkBench's `LayerMagGrad` (Blalock et al. 2020, MLSys; code
 * JJGO/shrinkbench, strategies/magnitude.py): importance |w · ∂L/∂w| as in `global-gradient` (the same batch, train
 * mode, cross-entropy), but every prunable tensor, bias included when biases are prunable, keeps the same fraction.
 */
export const layerGradient: PruningMethod = {
  name: "layer-gradient",
  summary: "Remove the same fraction of smallest-|w * dL/dw| weights from every layer (ShrinkBench LayerMagGrad)",
  paper: BLALOCK_2020,
  params: SCORE_DATA_PARAMS,
  needs: { gradients: true },
  distribution: () => "layer",
  schedule: () => ({ kind: "one-shot" }),
  score: weightTimesGradient,
};
