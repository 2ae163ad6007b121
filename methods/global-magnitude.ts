import type { PruningMethod } from "./types.js";
import { HAN_2015 } from "./citations.js";
import { absoluteValues } from "./scores.js";

/**
 * Global magnitude pruning: score = |w|, one threshold over all prunable tensors, so layers with many small weights
 * lose more. Han, Pool, Tran, Dally, "Learning both Weights and Connections for Efficient Neural Networks" (NeurIPS
 * 2015) prune by magnitude; ShrinkBench (Blalock et al. 2020, "GlobalMagWeight") shows the global variant beats
 * the per-layer one at equal compression. One-shot here: prune once after pretraining, then fine-tune.
 */
export const globalMagnitude: PruningMethod = {
  name: "global-magnitude",
  summary: "Remove the smallest-|w| weights under one threshold across all layers",
  paper: HAN_2015,
  params: {},
  needs: {},
  distribution: () => "global",
  schedule: () => ({ kind: "one-shot" }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
