import type { PruningMethod } from "./types.js";
import { HAN_2015 } from "./citations.js";
import { absoluteValues } from "./scores.js";

/**
 * Layer-wise magnitude pruning: score = |w|, and every prunable tensor loses the same fraction of its weights, as
 * in Han et al. 2015 ("Learning both Weights and Connections", NeurIPS) with a uniform per-layer rate; ShrinkBench's
 * "LayerMagWeight" (Blalock et al. 2020) finds it better than global magnitude at equal theoretical speedup.
 */
export const layerMagnitude: PruningMethod = {
  name: "layer-magnitude",
  summary: "Remove the same fraction of smallest-|w| weights from every layer",
  paper: HAN_2015,
  params: {},
  needs: {},
  distribution: () => "layer",
  schedule: () => ({ kind: "one-shot" }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
