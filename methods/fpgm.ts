import type { ChannelMember, PruningMethod } from "./types.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups, producingKernels } from "./channel-scores.js";

/**
 * FPGM, filter pruning via geometric median: He, Liu, Wang, Hu, Yang, "Filter Pruning via Geometric Median for Deep
 * Convolutional Neural Networks Acceleration" (CVPR 2019). The filters nearest the geometric median of a layer's
 * filters are the most replaceable (the others represent what they hold), whatever their norm; the median is
 * approximated by the filter that minimises the summed distance to all the others, so a filter's score is
 * s_j = Σ_k ‖F_j − F_k‖₂ over the layer's filters k, and the smallest s_j are removed.
 *
 * Where the paper is silent, the authors' code (he-y/filter-pruning-geometric-median, pruning_cifar10.py,
 * `get_filter_similar`) decides:
 * - The distance is Euclidean between the flattened filters (scipy's `cdist(..., 'euclidean')`; its `dist_type` switch
 *   always ends up Euclidean), the bias not included.
 * - FPGM alone is their norm rate 1 (`rate_norm: 1`, no norm-based pruning first) with `rate_dist` the fraction removed
 *   from each layer: the same fraction of every layer (`scope: layer`).
 * - Conv layers only (`layers: conv`): their mask skips the classifier.
 * - Their CIFAR ResNets mask every conv, the stem's and each block's second included (`mask_index` every third
 *   parameter), so the residual streams are scored too (`residual: prune`). They zero filters (soft pruning) and the
 *   shortcut keeps a zeroed conv2 channel alive; here a stream channel is removed from every layer of the stream at
 *   once, so its score is the sum over the stream's convs of each conv's own s_j (each conv's distances among its own
 *   filters), as l1-filter sums its norms. `residual: skip` gives Li et al.'s protocol instead.
 * - Removed channels' filters are gone from the distance sums: only the group's alive units count (the engine prunes
 *   once, so at the single step all are alive).
 * Their schedule re-selects and zeroes filters after every training epoch (soft filter pruning); here the engine
 * prunes once after pretraining and fine-tunes the compacted network, as the paper's "pruning the pre-trained model"
 * setting does before fine-tuning.
 */
export const fpgm: PruningMethod = {
  name: "fpgm",
  summary: "Remove the filters nearest the geometric median of their layer: smallest Σ‖F_j − F_k‖₂ (He et al. 2019)",
  paper: {
    authors: "He, Liu, Wang, Hu, Yang", title: "Filter Pruning via Geometric Median for Deep Convolutional Neural Networks Acceleration",
    venue: "CVPR", year: 2019, url: "https://arxiv.org/abs/1811.00250",
  },
  params: {
    ...CHANNEL_PARAMS,
    layers: { ...CHANNEL_PARAMS.layers, default: "conv" },
  },
  needs: {},
  granularity: "channel",
  ...channelHooks,
  schedule: () => ({ kind: "one-shot" }),
  score(ctx) {
    if (!ctx.groups) throw new Error("fpgm is a channel method: the engine gave it no channel groups");
    return new Map(eligibleGroups(ctx.groups, ctx.params).map((g) => {
      const s = new Float32Array(g.size);
      for (const m of producingKernels(g)) distanceSums(m, g.alive).forEach((v, u) => { s[u] += v; });
      return [g.name, s];
    }));
  },
};

/** Per unit, Σ over the other alive units of the Euclidean distance between their slices of `m` (0 for a removed unit). */
export function distanceSums(m: ChannelMember, alive: Float32Array): Float64Array {
  const inner = m.shape.slice(m.axis + 1).reduce((a, b) => a * b, 1);
  const outer = m.shape.slice(0, m.axis).reduce((a, b) => a * b, 1);
  const n = m.shape[m.axis];
  const units = m.indices.length;
  // Each unit's slice as one flat vector (a unit may cover several indices along the axis).
  const vectors = m.indices.map((idx) => {
    const vec = new Float64Array(idx.length * outer * inner);
    let k = 0;
    for (const a of idx) for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) vec[k++] = m.values[(o * n + a) * inner + i];
    return vec;
  });
  const sums = new Float64Array(units);
  for (let u = 0; u < units; u++) {
    if (!alive[u]) continue;
    for (let v = u + 1; v < units; v++) {
      if (!alive[v]) continue;
      const [a, b] = [vectors[u], vectors[v]];
      let d2 = 0;
      for (let i = 0; i < a.length; i++) d2 += (a[i] - b[i]) ** 2;
      const dist = Math.sqrt(d2);
      sums[u] += dist;
      sums[v] += dist;
    }
  }
  return sums;
}
