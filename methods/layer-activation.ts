import type { PruningMethod } from "./types.js";
import { BLALOCK_2020 } from "./citations.js";
import { SCORE_DATA_PARAMS, weightTimesActivation } from "./scores.js";

/**
 * Layer-wise activation-weighted magnitude pruning, ShrinkBench's `LayerMagAct` (Blalock et al. 2020, MLSys; code
 * JJGO/shrinkbench, strategies/magnitude.py): importance |w| × mean |input activation| as in `global-activation` (same
 * images, train mode, same departures from ShrinkBench's code), but every prunable tensor keeps the same fraction.
 * Within one tensor every weight reading an input unit is scaled by that unit's activation, so the weights of rarely
 * active inputs go first.
 */
export const layerActivation: PruningMethod = {
  name: "layer-activation",
  summary: "Remove the same fraction of smallest-|w| x mean|input activation| weights from every layer (ShrinkBench LayerMagAct)",
  paper: BLALOCK_2020,
  params: SCORE_DATA_PARAMS,
  needs: { activations: true },
  distribution: () => "layer",
  schedule: () => ({ kind: "one-shot" }),
  score: weightTimesActivation,
};
