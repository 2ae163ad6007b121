import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";
import { iterativeAddOnParams, iterativeAddOns } from "./imp.js";

/**
 * The lottery ticket's control (Frankle & Carbin, ICLR 2019, "random reinitialization"): the same iterative magnitude
 * pruning as `imp`, but before each retraining the surviving weights are drawn afresh from the initial distribution
 * (another seed stream of the same seed) instead of rewound to their own initial values. The paper shows such
 * networks learn slower and reach lower accuracy than winning tickets as sparsity grows: the mask alone is not the
 * ticket. It is the schedule's `reinit` rewind, so everything else (rate, rounds, threshold) matches `imp`'s defaults,
 * and it takes `imp`'s add-ons (ap_rate, lr_peaks) so each has its control.
 */
export const impRandomReinit: PruningMethod = {
  name: "imp-random-reinit",
  summary: "Lottery-ticket control: iterative magnitude pruning with the survivors randomly re-initialised each round",
  paper: { authors: "Frankle, Carbin", title: "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks", venue: "ICLR", year: 2019, url: "https://arxiv.org/abs/1803.03635" },
  params: {
    rate: { type: "number", default: 0.2, min: 0.01, max: 0.99, description: "fraction of the remaining weights pruned per round" },
    max_rounds: { type: "integer", default: 20, min: 1, max: 100, description: "most rounds a run may take (a target that needs more is refused when the sweep is planned)" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "one threshold over all layers, or the same rate in every layer" },
    ...iterativeAddOnParams,
  },
  needs: {},
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: (p) => ({ kind: "iterative", rate: Number(p.rate), maxRounds: Number(p.max_rounds), rewind: "reinit", rewindEpoch: 0, ...iterativeAddOns(p) }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
