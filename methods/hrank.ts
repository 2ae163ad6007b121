import type { PruningMethod } from "./types.js";
import { ACTIVATION_BATCH_PARAMS, producingLayers, unitStatistic } from "./activation-units.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups } from "./channel-scores.js";

/**
 * HRank: Lin, Ji, Wang, Zhang, Zhang, Tian, Shao, "HRank: Filter Pruning using High-Rank Feature Map" (CVPR 2020). The
 * average rank of a filter's feature maps hardly depends on the images it is estimated on, and low-rank maps carry
 * little information: each channel is scored by the rank of its h×w output map averaged over images, and the
 * lowest-rank filters are removed, then the network is fine-tuned.
 *
 * Where the paper is silent, the authors' code (lmbxmu/HRank, rank_generation.py) decides:
 * - The sample: `--limit 5` batches of `--train_batch_size 128` training images (`batches: 5`, `batch_size: 128`;
 *   here the seed's score order, unaugmented, where their loader is shuffled and augmented), the network in `eval()`
 *   mode (batch norm on its running statistics).
 * - The map is the output of the ReLU that follows the conv (their hooks sit on the ReLUs: VGG's `relucfg`, each
 *   ResNet block's `relu1` and `relu2`, the latter after the residual add); a residual stream's channel averages its
 *   rank over the stream's block outputs (their ResNet-56 ranks each `relu2` separately and masks each conv2's filters
 *   by its own ranks, the shortcut still carrying a masked channel; removing the channel takes it from every block).
 * - The rank is `torch.matrix_rank` of each map: singular values above σ_max·max(h, w)·ε_float32. It is counted here in
 *   float64 from the Gram matrix's eigenvalues (src/run/output-activations.ts, `numericalRank`), with that tolerance
 *   (torch.linalg.matrix_rank's max(h, w); the old API documents the number of singular values: equal on square maps).
 * - Each layer loses its own fraction (their `compress_rate` per conv), so `scope: layer`; conv layers only
 *   (`layers: conv`). A dense neuron's map is one value (rank 1 when non-zero) should `layers: all` be asked for.
 * Their compress rates per layer (e.g. ResNet-56's [0.1]+[0.60]*35+...) are hand-chosen for each network; here the
 * engine solves the common fraction that meets the run's target.
 */
export const hrank: PruningMethod = {
  name: "hrank",
  summary: "Remove the filters whose feature maps have the lowest average rank (Lin et al. 2020)",
  paper: {
    authors: "Lin, Ji, Wang, Zhang, Zhang, Tian, Shao", title: "HRank: Filter Pruning using High-Rank Feature Map",
    venue: "CVPR", year: 2020, url: "https://arxiv.org/abs/2002.10179",
  },
  params: {
    ...CHANNEL_PARAMS,
    layers: { ...CHANNEL_PARAMS.layers, default: "conv" },
    ...ACTIVATION_BATCH_PARAMS,
  },
  needs: { outputActivations: true },
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  async score(ctx) {
    if (!ctx.groups) throw new Error("hrank is a channel method: the engine gave it no channel groups");
    const groups = eligibleGroups(ctx.groups, ctx.params);
    if (groups.length === 0) return new Map();
    const layers = [...new Set(groups.flatMap((g) => producingLayers(g).map((m) => m.layer)))];
    const stats = await ctx.outputActivations!(
      { batches: Number(ctx.params.batches), batchSize: Number(ctx.params.batch_size), mode: "eval" }, { rank: true, layers },
    );
    return new Map(groups.map((g) => [g.name, unitStatistic(g, stats, (s) => s.meanRank)]));
  },
};
