import type { ChannelGroupView, ChannelMember, PruningMethod } from "./types.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups, producingKernels } from "./channel-scores.js";

/**
 * First-order Taylor importance: Molchanov, Mallya, Tyree, Frosio, Kautz, "Importance Estimation for Neural Network
 * Pruning" (CVPR 2019; code NVlabs/Taylor_pruning). A channel's importance is the squared first-order change of the
 * loss when it is removed, I = (Σ_{s∈S} g_s·w_s)² over the parameters S that produce it (their eq. 8). With a gate
 * z = 1 multiplying the channel after its batch norm, ∂L/∂z = γ·∂L/∂γ + β·∂L/∂β, so the importance is
 * (γ·g_γ + β·g_β)², their best criterion ("Taylor FO" / "gate after BN", Taylor-FO-BN in Table 3: method 22 of their
 * code, equal to its method 31 on BN γ and β). It is computed on each minibatch's gradient and averaged over the
 * minibatches (the mean of the squares, not the square of the mean gradient: pruning_engine.py's add_criteria sums
 * one value per minibatch, compute_saliency divides by their count), and the lowest are removed under one global
 * ranking of all channels (`scope: global`).
 *
 * Where their setting differs or the paper is silent:
 * - Their code prunes while fine-tuning, a few channels every `frequency` = 30 minibatches, with a momentum of 0.9
 *   over successive rounds. Here the method is one-shot (the engine has no gradual channel schedule that would
 *   prune inside fine-tuning; iterative rounds, as dropnet's, retrain fully between rankings): one ranking on the
 *   trained model over `batches` = 30 minibatches (their `frequency`) of `batch_size` = 64 (their main.py's default batch), model in
 *   training mode as in their training step; momentum has nothing to average over in one round.
 * - A channel with no batch norm after it (LeNet-5): their LeNet puts the gate after the ReLU and max pool. ReLU and
 *   max pooling commute with a positive scale, so at z = 1 that gate's gradient is the one of scaling the layer's
 *   filter and bias, and I = (Σ over the filter and the bias of g·w)²: the same formula on the layer's own parameters.
 * - A group of channels joined by residual adds (`residual: prune`) gets one gate shared by all its producers, so its
 *   terms are summed before squaring (their ImageNet ResNets instead divide the accumulated skip-connection gates by
 *   a per-stage count, a heuristic for those networks only).
 * - Their `l2_normalization_per_layer` is off by default, and so is it here (no per-layer normalisation).
 * - Conv channels only by default (`layers: conv`). The paper's method is "gate after BN" on the channels of
 *   convolutions, and its headline results (Table 3: ResNets on ImageNet) have no hidden dense layer. Their code does
 *   gate hidden dense neurons where a network has them (models/lenet.py gates fc1 and fc2; vgg_bn.py puts a gate after
 *   each BatchNorm1d of the classifier), but it prunes a count of neurons, a few every 30 minibatches with fine-tuning
 *   in between. Under this engine's one-shot MACs target, one global ranking with the dense neurons in it removes nearly
 *   all of them (they cost few MACs, so the threshold climbs until enough conv MACs are gone): LeNet-5 at a 70 % MACs
 *   reduction fell to 31 % top-1. `layers: all` keeps their code's gate placement on dense layers for who wants it.
 */
export const taylor: PruningMethod = {
  name: "taylor",
  summary: "Remove the channels with the smallest first-order Taylor importance (Σ g·w over their BN γ/β)² averaged over minibatches (Molchanov et al. 2019)",
  paper: {
    authors: "Molchanov, Mallya, Tyree, Frosio, Kautz", title: "Importance Estimation for Neural Network Pruning",
    venue: "CVPR", year: 2019, url: "https://arxiv.org/abs/1906.10771",
  },
  params: {
    ...CHANNEL_PARAMS,
    scope: { ...CHANNEL_PARAMS.scope, default: "global" },
    layers: { ...CHANNEL_PARAMS.layers, default: "conv" },
    min_keep: { ...CHANNEL_PARAMS.min_keep, default: 0 },
    batches: { type: "integer", default: 30, min: 1, max: 100_000, description: "minibatches the importance is averaged over (their `frequency`: 30)" },
    batch_size: { type: "integer", default: 64, min: 1, max: 100_000, description: "images per minibatch (their main.py default: 64)" },
  },
  needs: { batchGradients: true },
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  async score(ctx) {
    if (!ctx.groups) throw new Error("taylor is a channel method: the engine gave it no channel groups");
    if (!ctx.batchGradients) throw new Error("taylor needs the engine's batch gradients");
    const gated = eligibleGroups(ctx.groups, ctx.params).map((g) => ({ g, members: gateParameters(g) }));
    // Nothing to score (e.g. `layers: conv` on a network without convs): no gradients to take; the engine then says
    // that no channel group may be pruned, as it does for every channel method.
    if (gated.length === 0) return new Map();
    const names = [...new Set(gated.flatMap(({ members }) => members.map((m) => m.tensor)))];
    const sums = new Map(gated.map(({ g }) => [g.name, new Float64Array(g.size)]));
    let batches = 0;
    await ctx.batchGradients({ batches: Number(ctx.params.batches), batchSize: Number(ctx.params.batch_size), mode: "train" }, names, (grads) => {
      batches++;
      for (const { g, members } of gated) {
        const dz = new Float64Array(g.size);
        for (const m of members) gradientTimesWeight(m, grads.get(m.tensor)!).forEach((v, u) => { dz[u] += v; });
        const acc = sums.get(g.name)!;
        dz.forEach((v, u) => { acc[u] += v * v; });
      }
    });
    return new Map([...sums].map(([name, s]) => [name, Float32Array.from(s, (v) => v / Math.max(1, batches))]));
  },
};

/**
 * The parameters whose g·w sum to the gradient of a gate on the group's channels: its batch norms' γ and β where
 * the channels pass through batch norm, else the producing filters and their biases.
 */
export function gateParameters(g: ChannelGroupView): ChannelMember[] {
  const norms = g.members.filter((m) => m.side === "out" && m.layerKind === "batchnorm" && (m.role === "gamma" || m.role === "beta"));
  if (norms.length > 0) return norms;
  const layers = new Set(producingKernels(g).map((m) => m.layer));
  return g.members.filter((m) => m.side === "out" && layers.has(m.layer) && (m.role === "kernel" || m.role === "bias"));
}

/** Σ g·w over the slice of `m` each unit covers (the same slices as channel-scores.ts's sumAbsPerUnit). */
export function gradientTimesWeight(m: ChannelMember, grad: Float32Array): Float64Array {
  const inner = m.shape.slice(m.axis + 1).reduce((a, b) => a * b, 1);
  const outer = m.shape.slice(0, m.axis).reduce((a, b) => a * b, 1);
  const n = m.shape[m.axis];
  return Float64Array.from(m.indices, (idx) => {
    let s = 0;
    for (const a of idx) for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) { const k = (o * n + a) * inner + i; s += grad[k] * m.values[k]; }
    return s;
  });
}
