import type { PruningMethod } from "./types.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups } from "./channel-scores.js";

/**
 * Network slimming: Liu, Li, Shen, Huang, Yan, Zhang, "Learning Efficient Convolutional Networks through Network
 * Slimming" (ICCV 2017; code Eric-mingjie/network-slimming). The dense network trains with an L1 penalty
 * λ·Σ|γ| on the scale γ of every batch norm, which drives the γ of unneeded channels toward 0; the channels with the
 * smallest |γ| under one global threshold across layers are then removed (with their conv filters, their batch norm
 * and the next layer's inputs), and the network is fine-tuned without the penalty.
 *
 * As their code does it:
 * - The penalty is a loss term (the engine adds it to the training loss while pretraining): its gradient λ·sign(γ),
 *   sign(0) = 0, is the subgradient their `updateBN` adds to γ's gradient after the backward pass (main.py), and
 *   weight decay still applies to γ beside it. It acts while pretraining only, so a slimming run has a dense model
 *   of its own (λ is part of its dense key); λ = 0 is the plain dense model, pruned by |γ| (their baseline's "prune").
 * - λ: 1e-4, the paper's CIFAR/SVHN value and their code's default (their README uses 1e-5 for ResNet-164 and
 *   DenseNet-40). The total shrinkage is λ times the sum of the learning rates, so a shortened schedule needs a larger λ.
 * - One threshold over all channels scored (`scope: global`; vggprune.py sorts every γ and cuts at a percentile). The
 *   engine keeps at least one channel per group (and `min_keep` of it, 0 by default: their code has no floor, and
 *   their README notes layers pruned away entirely at 60 % on ResNet-164).
 * - ResNets: their ResNet pruning (resprune.py, channel selection layers) never shrinks the residual stream, only the
 *   channels inside blocks, so `residual: skip` by default.
 * Only channels produced through a batch norm have a γ: a group without one is not scored and keeps all its channels
 * (the paper, section 3: without batch norm, scaling factors say nothing about importance, since the convolution can
 * absorb any scaling). A residual group (`residual: prune`) with several batch norms sums their |γ| (the paper is
 * silent there). A network with no batch norm in its prunable groups is an error.
 */
export const slimming: PruningMethod = {
  name: "slimming",
  summary: "Train with L1 on batch-norm scales γ, then remove the channels with the smallest |γ| globally (Liu et al. 2017)",
  paper: {
    authors: "Liu, Li, Shen, Huang, Yan, Zhang", title: "Learning Efficient Convolutional Networks through Network Slimming",
    venue: "ICCV", year: 2017, url: "https://arxiv.org/abs/1708.06519",
  },
  params: {
    ...CHANNEL_PARAMS,
    scope: { ...CHANNEL_PARAMS.scope, default: "global" },
    min_keep: { ...CHANNEL_PARAMS.min_keep, default: 0 },
    residual: { ...CHANNEL_PARAMS.residual, default: "skip" },
    lambda: { type: "number", default: 1e-4, min: 0, max: 1, description: "strength λ of the L1 penalty on every batch-norm γ while pretraining (paper, CIFAR: 1e-4)" },
  },
  needs: {},
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  lossTerms: (p) => (Number(p.lambda) > 0 ? [{ norm: "l1", layerKinds: ["batchnorm"], roles: ["gamma"], strength: Number(p.lambda), phases: ["pretrain"] }] : []),
  score(ctx) {
    if (!ctx.groups) throw new Error("slimming is a channel method: the engine gave it no channel groups");
    const scores = new Map<string, Float32Array>();
    for (const g of eligibleGroups(ctx.groups, ctx.params)) {
      const gammas = g.members.filter((m) => m.side === "out" && m.role === "gamma" && m.layerKind === "batchnorm");
      if (gammas.length === 0) continue;
      const s = new Float32Array(g.size);
      for (const m of gammas) m.indices.forEach((idx, u) => { for (const c of idx) s[u] += Math.abs(m.values[c]); });
      scores.set(g.name, s);
    }
    if (scores.size === 0) throw new Error("slimming scores channels by their batch norm's γ, and none of the channel groups it may prune has a batch norm (Liu et al. 2017 prune networks with batch norm only)");
    return scores;
  },
};
