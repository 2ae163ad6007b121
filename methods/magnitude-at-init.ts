import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";

/**
 * Magnitude at initialization: the smallest-|w| initial weights are removed under one threshold, before any training,
 * and the sparse network is trained. The naive baseline of the prune-at-init comparisons (Frankle, Dziugaite, Roy,
 * Carbin, "Pruning Neural Networks at Initialization: Why are We Missing the Mark?", ICLR 2021), beside SNIP, GraSP
 * and SynFlow. With PyTorch's default init every layer's weights share one scale per fan-in, so the global threshold
 * mostly removes whole layers' worth of the widest layers first.
 */
export const magnitudeAtInit: PruningMethod = {
  name: "magnitude-at-init",
  summary: "Prune at initialization by |w| under one global threshold, then train the sparse network (baseline)",
  paper: { authors: "Frankle, Dziugaite, Roy, Carbin", title: "Pruning Neural Networks at Initialization: Why are We Missing the Mark?", venue: "ICLR", year: 2021, url: "https://arxiv.org/abs/2009.08576" },
  params: {},
  needs: {},
  distribution: () => "global",
  schedule: () => ({ kind: "at-init", rounds: 1 }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
