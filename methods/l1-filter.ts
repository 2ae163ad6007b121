import type { PruningMethod } from "./types.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups, producingKernels, sumAbsPerUnit } from "./channel-scores.js";

/**
 * L1-norm filter pruning: Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets" (ICLR 2017).
 * A filter's importance is s_j = Σ|F_j|, the sum of the absolute weights of the filter producing output channel j;
 * the filters with the smallest s_j are removed with their feature maps, the next layer's kernels that read them and
 * their batch norm, once, after training, and the network is fine-tuned.
 *
 * Their protocol, as the defaults give it:
 * - Each layer loses the same fraction of its filters (`scope: layer`); the engine solves that fraction for the run's
 *   target (Li et al. choose it per layer or stage by sensitivity analysis).
 * - Conv layers only (`layers: conv`): they prune filters, not dense neurons.
 * - ResNets (section 4.3; the public reimplementation, Eric-mingjie/rethinking-network-pruning
 *   cifar/l1-norm-pruning/res56prune.py): only the first conv of each residual block is pruned; the residual stream
 *   (the stem and every block's second conv, joined by the adds) is kept whole (`residual: skip`).
 * - Their ResNet-56-pruned-A also keeps the sensitive layers 16, 20, 38 and 54 (counting convs from the stem: here
 *   `skip: s1b8/conv1,s2b1/conv1,s3b1/conv1,s3b9/conv1`); pruned-B skips 16, 18, 20, 34, 38, 54 and uses 60/30/10 %
 *   per stage. Those lists come from their sensitivity analysis of ResNet-56 on CIFAR-10, so they are not defaults.
 * Where a group has several producing filters (`residual: prune` on a residual stream, a MobileNetV2 expansion with
 * its depthwise filter counted separately), a channel's score is the sum over its producing conv/dense filters
 * (Torch-Pruning's group L1 with sum reduction); the paper is silent there. A dense neuron (`layers: all`) is scored by
 * the L1 norm of its incoming weights, the same formula.
 */
export const l1Filter: PruningMethod = {
  name: "l1-filter",
  summary: "Remove the filters (channels) with the smallest L1 norm Σ|w| (Li et al. 2017)",
  paper: { authors: "Li, Kadav, Durdanovic, Samet, Graf", title: "Pruning Filters for Efficient ConvNets", venue: "ICLR", year: 2017, url: "https://arxiv.org/abs/1608.08710" },
  params: {
    ...CHANNEL_PARAMS,
    layers: { ...CHANNEL_PARAMS.layers, default: "conv" },
    residual: { ...CHANNEL_PARAMS.residual, default: "skip" },
  },
  needs: {},
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  score(ctx) {
    if (!ctx.groups) throw new Error("l1-filter is a channel method: the engine gave it no channel groups");
    return new Map(eligibleGroups(ctx.groups, ctx.params).map((g) => {
      const s = new Float32Array(g.size);
      for (const m of producingKernels(g)) sumAbsPerUnit(m).forEach((v, u) => { s[u] += v; });
      return [g.name, s];
    }));
  },
};
