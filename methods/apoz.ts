import type { PruningMethod } from "./types.js";
import { ACTIVATION_BATCH_PARAMS, producingLayers, unitStatistic } from "./activation-units.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups } from "./channel-scores.js";

/**
 * APoZ, Network Trimming: Hu, Peng, Tai, Tang, "Network Trimming: A Data-Driven Neuron Pruning Approach towards
 * Efficient Deep Architectures" (arXiv 2016). A neuron (a dense unit, or a conv channel over its whole feature map)
 * whose output after the ReLU is mostly zero contributes little: APoZ_c = Σ_k Σ_j [O_c,j(k) = 0] / (N·M), over N
 * images k and the M positions j of channel c's output map, and the channels with the highest APoZ are removed (the
 * score is 1 − APoZ, the fraction of non-zero outputs). There is no public code from the authors; where the paper
 * is silent:
 * - The images: they measure APoZ on ImageNet's validation set (N = 50,000); here `batches` × `batch_size` training
 *   images (default 5 × 128, as HRank's rank sample) of the seed's score order, the same for every method of a seed,
 *   with batch norm on its running statistics (`ctx.outputActivations` in "eval" mode, the trained network's
 *   inference).
 * - Where the output goes through batch norm, a residual add and then the ReLU, APoZ is that ReLU's (the activation the
 *   next layer reads); a residual stream's channel averages its APoZ over the stream's block outputs. A layer with no
 *   ReLU after it (none in the CNNs here) counts exact zeros of its raw output, which are rare.
 * - They trim dense and conv neurons alike (VGG-16's conv5_3 and fc6 first), so `layers: all`; they prune the layers
 *   with the highest mean APoZ first and a few at a time, retraining in between. Here the engine prunes once after
 *   pretraining: `scope: layer` removes the same fraction of every layer, `scope: global` ranks all channels by APoZ
 *   together (closest to pruning where APoZ is highest).
 * - Ties (channels that are never zero all score 1) go in the engine's order: lower unit index removed first.
 */
export const apoz: PruningMethod = {
  name: "apoz",
  summary: "Remove the channels whose post-ReLU outputs are most often zero: highest APoZ (Hu et al. 2016)",
  paper: {
    authors: "Hu, Peng, Tai, Tang", title: "Network Trimming: A Data-Driven Neuron Pruning Approach towards Efficient Deep Architectures",
    venue: "arXiv", year: 2016, url: "https://arxiv.org/abs/1607.03250",
  },
  params: { ...CHANNEL_PARAMS, ...ACTIVATION_BATCH_PARAMS },
  needs: { outputActivations: true },
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  async score(ctx) {
    if (!ctx.groups) throw new Error("apoz is a channel method: the engine gave it no channel groups");
    const groups = eligibleGroups(ctx.groups, ctx.params);
    if (groups.length === 0) return new Map();
    const layers = [...new Set(groups.flatMap((g) => producingLayers(g).map((m) => m.layer)))];
    const stats = await ctx.outputActivations!(
      { batches: Number(ctx.params.batches), batchSize: Number(ctx.params.batch_size), mode: "eval" }, { layers },
    );
    return new Map(groups.map((g) => [g.name, unitStatistic(g, stats, (s) => s.zeroFraction).map((z) => 1 - z)]));
  },
};
