import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";
import type { Rewind } from "../src/prune/schedules.js";

/**
 * Iterative magnitude pruning, the lottery-ticket procedure of Frankle & Carbin, "The Lottery Ticket Hypothesis:
 * Finding Sparse, Trainable Neural Networks" (ICLR 2019): train the dense network, remove the fraction `rate` of the
 * remaining weights with the smallest |w|, rewind the survivors to their initial values and train again; repeat
 * until the target. Every round is a result (one point per level, each trained once). `rewind` picks what a round
 * retrains from: `init` (the paper), `epoch` (the weights after `rewind_epoch` epochs of dense training: Frankle,
 * Dziugaite, Roy, Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis", ICML 2020, needed beyond
 * small networks), `lr` (keep the trained weights, replay the pretraining LR schedule: Renda, Frankle, Carbin,
 * "Comparing Rewinding and Fine-tuning in Neural Network Pruning", ICLR 2020) or `none` (fine-tune, Han et al. 2015).
 * Where the paper is silent or varies: one global threshold by default (`scope: global`, as Frankle et al. 2020 and
 * open_lth's default for every network); the 2019 paper prunes LeNet layer-wise at 20 % per round with the output
 * layer at half that rate, which `scope: layer` approximates with the same rate in every layer (no per-layer-type
 * rates). Biases, batch norm and the other tensors the grid's `prunable` excludes are never pruned, as in the paper.
 * Retraining uses the grid's pretraining config (the paper retrains with the original optimizer and iterations).
 */
export const imp: PruningMethod = {
  name: "imp",
  summary: "Iterative magnitude pruning (lottery ticket): prune rate of the rest per round, rewind, retrain; one result per level",
  paper: { authors: "Frankle, Carbin", title: "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks", venue: "ICLR", year: 2019, url: "https://arxiv.org/abs/1803.03635" },
  params: {
    rate: { type: "number", default: 0.2, min: 0.01, max: 0.99, description: "fraction of the remaining weights pruned per round" },
    max_rounds: { type: "integer", default: 20, min: 1, max: 100, description: "most rounds a run may take (a target that needs more is refused when the sweep is planned)" },
    rewind: { type: "string", default: "init", choices: ["init", "epoch", "lr", "none"], description: "what each round retrains from: initial weights, weights at rewind_epoch, trained weights with the LR schedule replayed, or fine-tuning" },
    rewind_epoch: { type: "integer", default: 1, min: 1, description: "the pretraining epoch rewound to (rewind: epoch)" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "one threshold over all layers, or the same rate in every layer" },
  },
  needs: {},
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: (p) => ({ kind: "iterative", rate: Number(p.rate), maxRounds: Number(p.max_rounds), rewind: String(p.rewind) as Rewind, rewindEpoch: Number(p.rewind_epoch) }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
