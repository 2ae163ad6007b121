import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";
import type { Rewind, Schedule } from "../src/prune/schedules.js";
import type { HyperValue } from "../src/core/types.js";

/** The iterative schedule's add-ons as hyperparameters (AP and SILO; see `imp`), shared with `imp-random-reinit`. */
export const iterativeAddOnParams: PruningMethod["params"] = {
  ap_rate: { type: "number", default: 0, min: 0, max: 0.98, description: "Activating-while-Pruning: the part of each round's rate removed among negative weights that moved least (0 = off; must be below rate)" },
  lr_peaks: { type: "string", default: "constant", choices: ["constant", "silo"], description: "each round's peak LR: the configured one, or SILO's S-curve over the rounds" },
  silo_alpha: { type: "number", default: 0.04, min: 0, description: "SILO: rise of the peak LR (alpha)" },
  silo_beta: { type: "number", default: 5, min: 0.01, description: "SILO: steepness of the S-curve (beta)" },
  silo_offset: { type: "number", default: 0.03, min: 0, description: "SILO: the peak LR the curve starts from (offset)" },
};

/** The add-ons present in a schedule value only when on, so the plain schedule stays what it was. */
export function iterativeAddOns(p: Readonly<Record<string, HyperValue>>): Pick<Extract<Schedule, { kind: "iterative" }>, "apRate" | "lrPeaks"> {
  const ap = Number(p.ap_rate ?? 0);
  return {
    ...(ap > 0 ? { apRate: ap } : {}),
    ...(p.lr_peaks === "silo"
      ? { lrPeaks: { kind: "silo" as const, alpha: Number(p.silo_alpha ?? 0.04), beta: Number(p.silo_beta ?? 5), offset: Number(p.silo_offset ?? 0.03), delay: 1 } }
      : {}),
  };
}

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
 *
 * Two add-ons of the iterative schedule, off by default (then the runs are today's IMP exactly):
 * - `ap_rate` > 0: Activating-while-Pruning (Liu, Ghosh, Tan, Motani, "AP: Selective Activation for De-sparsifying
 *   Pruned Networks", arXiv 2212.06145; code Martin1937/AP-Activate-While-Pruning-). Each round removes
 *   (rate − ap_rate) of the surviving weights by |w| and ap_rate more among the surviving negative weights with the
 *   smallest movement |w_T − w_0| over the round (w_0: the weights when the round's training began, snapshotted by
 *   the runner; the dense training's start for round 1), the same total per round. Followed: the authors' ResNet-20
 *   script (p 20, p_ap 2, global). Avoided: their code prunes every parameter named "weight", batch-norm γ
 *   included; here AP picks only among the grid's prunable tensors, as the base criterion does.
 * - `lr_peaks: silo`: SILO (Liu, Ghosh, Tan, Motani, "SILO", arXiv 2212.06144; code Martin1937/SILO): round k's
 *   retraining peaks at α·ρ^β/(ρ^β + (1 − ρ)^β) + offset, ρ = 1 − (1 − rate)^(k − 1) (delay 1, as the code: rounds
 *   k <= 1 keep the configured LR), with the configured LR schedule's shape and warm-up. Defaults α 0.04, β 5,
 *   offset 0.03 are the authors' ResNet-20 values; their code's other defects (ranking by the last epoch's movement,
 *   a re-split of CIFAR) do not apply: ranking stays the method's and the data split the grid's.
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
    ...iterativeAddOnParams,
  },
  needs: {},
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: (p) => ({ kind: "iterative", rate: Number(p.rate), maxRounds: Number(p.max_rounds), rewind: String(p.rewind) as Rewind, rewindEpoch: Number(p.rewind_epoch), ...iterativeAddOns(p) }),
  score: (ctx) => absoluteValues(ctx.tensors),
};
