import type { PruningMethod } from "./types.js";
import { absoluteValues } from "./scores.js";
import type { ScratchRetrain } from "../src/prune/schedules.js";

/**
 * The pruned architecture trained from scratch: Liu, Sun, Zhou, Huang, Darrell, "Rethinking the Value of Network
 * Pruning" (ICLR 2019; code Eric-mingjie/rethinking-network-pruning), their baseline for unstructured weight-level
 * pruning (Han et al. 2015). The dense model is trained and pruned once by |w| under one global threshold (the mask
 * global-magnitude gives); then only the mask is kept: every weight is drawn afresh from the initial distribution
 * (another seed stream of the run's seed, the one imp-random-reinit draws from) and the sparse network is trained
 * with the dense model's training config, not the fine-tuning one.
 * - `budget: e` (Scratch-E): as many epochs as the dense training.
 * - `budget: b` (Scratch-B): the dense training's compute: its epochs × dense MACs ÷ the pruned model's effective
 *   MACs, rounded down as the authors' scripts do (int()), at most `cap` × the epochs, the LR schedule stretched
 *   with it (their step milestones move to the same fractions of the longer run).
 * Where the authors differ or are silent: their FLOP counter adds batch norm, ReLU and pooling operations and
 * leaves linear layers dense (they prune only convolutions), so their ratio is below 1/density; here it is the
 * harness's effective MACs (conv and dense layers × kernel density), over the grid's prunable tensors. Their
 * weight-level scripts apply no cap (a large `cap` reproduces them); the default cap 2 follows the paper's rule for
 * ImageNet (a model saving more than 2× trains for twice the epochs, as we read its training-budget paragraph),
 * which matters more here: sparse MACs are not saved on dense hardware, and at 2 % density the uncapped ratio
 * would ask for ~50× the dense training. They re-draw conv weights as
 * N(0, 2/n) with n the surviving fan-out; here the grid's own `model.init`, the same draw a dense model gets, with
 * biases re-drawn too. Scratch trains with the pretraining config and reports its last epoch, like IMP's rounds.
 */
export const scratch: PruningMethod = {
  name: "scratch",
  summary: "Train the one-shot magnitude mask from a fresh random init: dense epochs (Scratch-E) or dense compute (Scratch-B)",
  paper: { authors: "Liu, Sun, Zhou, Huang, Darrell", title: "Rethinking the Value of Network Pruning", venue: "ICLR", year: 2019, url: "https://arxiv.org/abs/1810.05270" },
  params: {
    budget: { type: "string", default: "e", choices: ["e", "b"], description: "e: the dense training's epochs (Scratch-E); b: its compute, epochs × dense/sparse MACs (Scratch-B)" },
    cap: { type: "number", default: 2, min: 1, max: 1000, description: "Scratch-B: the most the epochs are multiplied by" },
    scope: { type: "string", default: "global", choices: ["global", "layer"], description: "the mask's magnitude threshold: one over all layers (the authors'), or the same rate in every layer" },
  },
  needs: {},
  distribution: (p) => (p.scope === "layer" ? "layer" : "global"),
  schedule: (p) => {
    const retrain: ScratchRetrain = p.budget === "b" ? { budget: "macs", cap: Number(p.cap) } : { budget: "epochs" };
    return { kind: "one-shot", scratch: retrain };
  },
  score: (ctx) => absoluteValues(ctx.tensors),
};
