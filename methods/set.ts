import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";

/**
 * SET: Sparse Evolutionary Training (Mocanu, Mocanu, Stone, Nguyen, Gibescu, Liotta, Nature Communications 2018).
 * Sparse from initialization with an Erdős–Rényi mask (here ERK, which for dense layers is the paper's ER); after
 * every epoch (by default) each layer removes the fraction ζ of its active weights closest to zero (the smallest
 * positive and largest negative, i.e. smallest |w|) and grows as many at random positions, at zero. ζ stays constant
 * (the paper's 0.3); no update in the last `1 − end` of training.
 */
export const set: PruningMethod = {
  name: "set",
  summary: "Dynamic sparse training: drop smallest |w|, grow at random, at constant density (Erdős–Rényi)",
  paper: { authors: "Mocanu, Mocanu, Stone, Nguyen, Gibescu, Liotta", title: "Scalable training of artificial neural networks with adaptive sparse connectivity inspired by network science", venue: "Nature Communications", year: 2018, url: "https://arxiv.org/abs/1707.04780" },
  params: {
    interval: { type: "integer", default: 0, min: 0, description: "steps between updates; 0 = once per epoch of the pretraining phase" },
    drop_fraction: { type: "number", default: 0.3, min: 0.01, max: 1, description: "fraction of active weights updated (ζ)" },
    end: { type: "number", default: 1, min: 0.01, max: 1, description: "no updates after this fraction of training" },
  },
  needs: {},
  distribution: () => "erk",
  schedule: (p) => ({ kind: "dynamic", interval: Number(p.interval), dropFraction: Number(p.drop_fraction), end: Number(p.end), decay: "constant" }),
  regrowth: () => "random",
  score: (ctx) => absoluteValues(ctx.tensors),
};
