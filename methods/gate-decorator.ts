import type { HyperParamSpec, HyperValue } from "../src/core/types.js";
import type { ChannelGroupView, ChannelMember, PruningMethod } from "./types.js";
import { CHANNEL_PARAMS, eligibleGroups, producingKernels } from "./channel-scores.js";

/**
 * Gate Decorator: You, Yan, Ye, Ma, Wang, "Gate Decorator: Global Filter Pruning Method for Accelerating Deep
 * Convolutional Neural Networks" (NeurIPS 2019; code youzhonghui/gate-decorator-pruning). A gate φ multiplies every
 * channel after its batch norm (their GBN: φ taken from γ, γ then fixed to 1, and the shift b = β/γ trained under the
 * gate, so the output is φ·(x̂ + b)); a channel's importance is the first-order loss change of setting its gate to 0,
 * Θ = |φ·∂L/∂φ|, accumulated over the minibatches of a tick (eq. 6; their `cal_score` adds the absolute value per
 * backward pass). Channels joined by residual adds form one group (their group pruning): one score, the sum of its
 * members' (eq. 9), and one mask. Tick-Tock: a tock trains everything under loss + λ·Σ|φ| (eq. 8); a tick trains the
 * gates, the batch-norm shifts and the other non-conv layers with the conv layers frozen (their freeze_conv) while Θ
 * accumulates, then removes the lowest-ranked `fraction` of the remaining channels globally, every group keeping
 * `min_keep` of its channels (their GBN's minimal_ratio 0.1). A tock comes first and after every `tock_every` ticks;
 * pruning stops once the compacted model reaches the run's target (their scripts stop at FLOPs save points), then the
 * network is fine-tuned (the gates folded into the batch norms: their `melt`) with the run's fine-tuning config.
 * The engine runs it all (src/prune/schedules.ts "tick-tock", src/train/gates.ts, src/run/tick-tock-step.ts); this
 * file sums the gate statistic over each group.
 *
 * As their code does it, or where the paper is silent:
 * - b = clamp(β/γ, −10, 10) (their extract_from_bn); the gate and b persist over all ticks and tocks; weight decay
 *   (the config's) applies to them as their SGD over all parameters does.
 * - Tick LR 1e-3 constant (their lr_min), one epoch; tock LR triangular 1e-3 → 1e-2 → 1e-3 (their tock's iter_hook);
 *   λ = 1e-3 (their sparse_lambda); no penalty in ticks (their recover() trains without the loss hook).
 * - The fraction counts the remaining prunable channels of the groups scored, each group's channel once (their code
 *   counts a group's channel once per member batch norm; its FLOPs regulariser, flops_eta, is 0 in their scripts and
 *   not offered). At least one channel per tick; the last tick removes only as many as reach the target.
 * - Networks without batch norm (LeNet-5): the gate goes on the conv (or dense) layer's output, φ = 1 to start
 *   (their appendix B, gated convolution); the same statistic and the same penalty. The engine gates every group it
 *   may prune, so with `layers: conv` LeNet-5's dense neurons have gates that train and are penalised in tocks but
 *   are never ranked (their code likewise gates every batch norm, whatever it prunes).
 * - Optimizer state starts afresh in every tick and tock (their one SGD keeps its momentum across them); the
 *   optimizer, batch size, momentum and weight decay are the run's fine-tuning config's.
 * - Defaults scaled for small grids (LeNet-5/ResNet-20 on Fashion-MNIST); the paper's and their scripts' values are
 *   in each hyperparameter's description.
 */
const TICK_TOCK_PARAMS: Record<string, HyperParamSpec> = {
  fraction: { type: "number", default: 0.05, min: 1e-6, max: 0.99, description: "fraction of the remaining prunable channels removed per tick (their scripts: ResNet-56 0.002, VGG-16 0.005; 0.05 so that a small grid needs ~10-20 ticks)" },
  tick_images: { type: "integer", default: 2048, min: 0, max: 100_000_000, description: "training images of a tick's one epoch, a fresh seeded subset each tick; 0 = the whole training split (paper: a subset; their scripts: the whole split)" },
  tick_lr: { type: "number", default: 1e-3, min: 1e-9, max: 10, description: "constant LR of a tick (their lr_min: 1e-3)" },
  tock_every: { type: "integer", default: 10, min: 1, max: 100_000, description: "ticks between tocks (their T: 10); a tock also comes before the first tick" },
  tock_epochs: { type: "integer", default: 1, min: 0, max: 10_000, description: "epochs of a tock (their tock_epoch: 10; 1 to fit a small grid)" },
  tock_lr_min: { type: "number", default: 1e-3, min: 1e-9, max: 10, description: "a tock's triangular LR starts and ends here (their lr_min: 1e-3)" },
  tock_lr_max: { type: "number", default: 1e-2, min: 1e-9, max: 10, description: "a tock's triangular LR peaks here halfway (their lr_max: 1e-2)" },
  lambda: { type: "number", default: 1e-3, min: 0, max: 1, description: "strength λ of the L1 penalty on the gates during tocks (their sparse_lambda: 1e-3)" },
};

export const gateDecorator: PruningMethod = {
  name: "gate-decorator",
  summary: "Gates after batch norm, Taylor importance |φ·∂L/∂φ| accumulated over Tick-Tock ticks, group pruning of the lowest globally (You et al. 2019)",
  paper: {
    authors: "You, Yan, Ye, Ma, Wang",
    title: "Gate Decorator: Global Filter Pruning Method for Accelerating Deep Convolutional Neural Networks",
    venue: "NeurIPS", year: 2019, url: "https://arxiv.org/abs/1909.08174",
  },
  params: {
    min_keep: { ...CHANNEL_PARAMS.min_keep, description: "every pruned group keeps at least this fraction of its channels, and at least one (their minimal_ratio: 0.1)" },
    layers: { ...CHANNEL_PARAMS.layers, default: "conv", description: "prune conv filters only (conv: the paper prunes filters) or dense neurons too (all)" },
    residual: { ...CHANNEL_PARAMS.residual, description: "prune channels shared by residual adds as one group (prune: their group pruning) or keep residual streams whole (skip)" },
    skip: CHANNEL_PARAMS.skip,
    ...TICK_TOCK_PARAMS,
  },
  needs: {},
  granularity: "channel",
  distribution: () => "global",
  minDensity: (p) => Number(p.min_keep),
  schedule: (p) => ({
    kind: "tick-tock", fraction: Number(p.fraction), tickImages: Number(p.tick_images), tickLr: Number(p.tick_lr),
    tockEvery: Number(p.tock_every), tockEpochs: Number(p.tock_epochs), tockLr: [Number(p.tock_lr_min), Number(p.tock_lr_max)],
  }),
  lossTerms: (p: Readonly<Record<string, HyperValue>>) => (Number(p.lambda) > 0
    ? [{ norm: "l1", layerKinds: ["batchnorm", "conv", "dense"], roles: ["gate"], strength: Number(p.lambda), phases: ["tock"] }] : []),
  score(ctx) {
    if (!ctx.groups) throw new Error("gate-decorator is a channel method: the engine gave it no channel groups");
    const saliency = ctx.gateSaliency;
    if (!saliency) throw new Error("gate-decorator scores channels by the gate statistic of its schedule's ticks, and the engine gave it none (it needs the tick-tock schedule)");
    const scores = new Map<string, Float32Array>();
    for (const g of eligibleGroups(ctx.groups, ctx.params)) {
      const s = new Float32Array(g.size);
      for (const m of gatedMembers(g)) {
        const theta = saliency.get(m.layer);
        if (!theta) throw new Error(`gate-decorator: no gate statistic for ${m.layer}, a producer of group ${g.name}`);
        m.indices.forEach((idx, u) => { for (const c of idx) s[u] += theta[c]; });
      }
      scores.set(g.name, s);
    }
    return scores;
  },
};

/**
 * The members whose layers carry a group's gates, one per gated layer: its batch norms' γ where the channels pass
 * through batch norm, else its producing conv and dense kernels (the engine's gate placement, the same rule).
 */
function gatedMembers(g: ChannelGroupView): ChannelMember[] {
  const norms = g.members.filter((m) => m.side === "out" && m.layerKind === "batchnorm" && m.role === "gamma");
  return norms.length > 0 ? norms : producingKernels(g);
}
