import type { PruningMethod } from "./types.js";
import type { Rewind } from "../src/prune/schedules.js";
import { producingLayers, unitStatistic } from "./activation-units.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups } from "./channel-scores.js";

/**
 * DropNet: Tan, Motani, "DropNet: Reducing Neural Network Complexity via Iterative Pruning" (ICML 2020; code
 * tanchongmin/DropNet). Train, then remove the nodes (dense neurons) and filters (conv channels) with the lowest
 * average post-activation value over the training samples, a fraction p of those remaining; reset the survivors to
 * their initial values, as the lottery ticket does, and train again; repeat. For a conv filter the value is its
 * output map after the ReLU averaged over positions and images (their global average pooling of the post-ReLU map,
 * then the mean of its absolute value over the samples): exactly `meanAbs` of `ctx.outputActivations`, which after a
 * ReLU is the mean activation.
 *
 * Where the paper is silent, the authors' notebook decides:
 * - `scope: global` is their "minimum" (mask_type 'min': one ranking of the raw mean activations over every layer,
 *   what their random-initialisation and pruning-fraction experiments run); `scope: layer` is "minimum_layer" (the
 *   same fraction from each layer).
 * - `rate: 0.2`: their `percentile`, the fraction of the remaining units removed per round. Here it is an iterative
 *   schedule's rate over the run's target (src/prune/schedules.ts, src/prune/structured.ts): round r keeps
 *   (1 − rate)^r of the target's measure, the last round exactly the target. With a channel-sparsity target under
 *   `scope: global` that is their rule (p of the remaining units each round), compounded on the dense count to whole
 *   channels where they take int(p·remaining) each round; with a MACs target, p of the remaining MACs.
 * - `rewind: init`: after each pruning the surviving weights are set back to their initial values
 *   (`model.set_weights(weights_initial)` before every training cycle) and retrained like the dense model.
 *   `rewind: none` fine-tunes the trained survivors instead (and `lr`, `epoch` as for imp).
 * - `control: reinit`: their random-initialisation comparison. Every level's mask, found as above, is also trained
 *   from a fresh random initialisation and that is the level's result; the rounds still prune from the
 *   original-initialisation network's activations, as their `comparerandom` does.
 * - The statistic is taken over every training image (`batches: 0`; their `activationmodel.predict(x_train)`), in
 *   inference mode (batch norm on its running statistics; their networks have none).
 * - Which units: their MLPs mask every hidden dense layer and their CNNs every conv layer, never the output layer:
 *   `layers: all` (the classifier's outputs are protected anyway). A residual stream's channel averages its mean
 *   activation over the stream's block outputs (their networks have no residual adds).
 * - Ties (they shuffle the units at the threshold) go in the engine's order: lower unit index removed first.
 * - Their loop has no per-layer floor (it stops at 10 % of the units overall); here `min_keep` keeps every group from
 *   collapsing, as for the other channel methods, and training length is the grid's (they early-stop on validation
 *   loss with patience 5).
 */
export const dropnet: PruningMethod = {
  name: "dropnet",
  summary: "Iteratively remove the nodes/filters with the lowest mean post-activation value, reset to init, retrain (Tan & Motani 2020)",
  paper: {
    authors: "Tan, Motani", title: "DropNet: Reducing Neural Network Complexity via Iterative Pruning",
    venue: "ICML", year: 2020, url: "https://proceedings.mlr.press/v119/tan20a.html",
  },
  params: {
    ...CHANNEL_PARAMS,
    scope: { ...CHANNEL_PARAMS.scope, default: "global", description: "one ranking of the mean activations over all groups (their minimum) or the same fraction from every group (minimum_layer)" },
    rate: { type: "number", default: 0.2, min: 0.01, max: 0.99, description: "fraction of the target's remaining measure (channels, MACs or params) removed per round (their p)" },
    max_rounds: { type: "integer", default: 30, min: 1, max: 100, description: "most rounds a run may take (a target that needs more is refused when the sweep is planned)" },
    rewind: { type: "string", default: "init", choices: ["init", "none", "lr", "epoch"], description: "what each round retrains from: the initial weights (theirs), fine-tuning, the LR schedule replayed, or the weights at rewind_epoch" },
    rewind_epoch: { type: "integer", default: 1, min: 1, description: "the pretraining epoch rewound to (rewind: epoch)" },
    control: { type: "string", default: "none", choices: ["none", "reinit"], description: "reinit: each level's result is its mask trained from a fresh random initialisation (their random-init comparison)" },
    batches: { type: "integer", default: 0, min: 0, max: 100000, description: "training batches the mean activations are taken over (0 = every training image, theirs)" },
    batch_size: { type: "integer", default: 128, min: 1, max: 4096, description: "images per batch" },
  },
  needs: { outputActivations: true },
  granularity: "channel",
  ...channelHooks,
  schedule: (p) => ({
    kind: "iterative", rate: Number(p.rate), maxRounds: Number(p.max_rounds), rewind: String(p.rewind) as Rewind, rewindEpoch: Number(p.rewind_epoch),
    ...(p.control === "reinit" ? { control: "reinit" as const } : {}),
  }),
  async score(ctx) {
    if (!ctx.groups) throw new Error("dropnet is a channel method: the engine gave it no channel groups");
    const groups = eligibleGroups(ctx.groups, ctx.params);
    if (groups.length === 0) return new Map();
    const layers = [...new Set(groups.flatMap((g) => producingLayers(g).map((m) => m.layer)))];
    const batches = Number(ctx.params.batches);
    const stats = await ctx.outputActivations!(
      // 0: as many batches as there are (the score order stops after one pass over the training split).
      { batches: batches === 0 ? Number.MAX_SAFE_INTEGER : batches, batchSize: Number(ctx.params.batch_size), mode: "eval" }, { layers },
    );
    return new Map(groups.map((g) => [g.name, unitStatistic(g, stats, (s) => s.meanAbs)]));
  },
};
