import type { HyperValue } from "../src/core/types.js";
import type { PruningMethod } from "./types.js";
import { CHANNEL_PARAMS, channelHooks, eligibleGroups, producingKernels, sumAbsPerUnit } from "./channel-scores.js";

const STAGE_RATES_FORMAT = `comma-separated prefix:rate pairs with rates in (0, 1], e.g. "s1:0.6,s2:0.3,s3:0.1"`;

/** `stage_rates` read into prefix -> rate, or the reason it cannot be. */
export function parseStageRates(text: string): Map<string, number> | string {
  const rates = new Map<string, number>();
  if (text.trim() === "") return rates;
  for (const part of text.split(",")) {
    const m = /^\s*([^:\s]+)\s*:\s*([^\s]+)\s*$/.exec(part);
    const rate = m ? Number(m[2]) : NaN;
    if (!m || !(rate > 0 && rate <= 1)) return `stage_rates: cannot read "${part.trim()}": expected ${STAGE_RATES_FORMAT}`;
    if (rates.has(m[1])) return `stage_rates: prefix "${m[1]}" is given twice`;
    rates.set(m[1], rate);
  }
  return rates;
}

/** How much faster than the least-pruned prefix a group produced by `producers` goes (>= 1); 1 without stage rates. */
function stageMultiplier(params: Readonly<Record<string, HyperValue>>, producers: readonly string[]): number {
  const rates = parseStageRates(String(params.stage_rates ?? ""));
  if (typeof rates === "string") throw new Error(rates);
  if (rates.size === 0) return 1;
  const smallest = Math.min(...rates.values());
  const rateOf = (layer: string) => {
    let best: string | null = null;
    for (const prefix of rates.keys()) if (layer.startsWith(prefix) && (best === null || prefix.length > best.length)) best = prefix;
    return best === null ? smallest : rates.get(best)!;
  };
  return Math.max(...producers.map(rateOf)) / smallest;
}

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
 * - Their ResNet-56-pruned-A also keeps the sensitive layers 16, 20, 38 and 54 (counting convs from the stem, as the
 *   reimplementation's res56prune.py does: here `skip: s1b8/conv1,s2b1/conv1,s3b1/conv1,s3b9/conv1`) and prunes 10 %
 *   of every other first conv; pruned-B skips 16, 18, 20, 34, 38, 54 (`s1b8, s1b9, s2b1, s2b8, s3b1, s3b9`, each
 *   `/conv1`) and prunes p1 = 60 %, p2 = 30 %, p3 = 10 % by stage (section 4.2). Those lists come from their
 *   sensitivity analysis of ResNet-56 on CIFAR-10, so they are not defaults; benchmarks/resnet56-cifar10.yaml spells
 *   both out.
 * - Per-stage rates (`stage_rates`, e.g. `s1:0.6,s2:0.3,s3:0.1`): a layer whose name starts with a prefix is pruned
 *   at that prefix's rate relative to the others (the longest matching prefix wins; a layer no prefix matches goes at
 *   the smallest rate). The ratios are kept and the engine scales them together to meet the run's target: a group
 *   loses min(1, t × rate / smallest rate) of its filters, t solved for the target, so Li et al.'s own 60/30/10 % is
 *   t = 0.1, and other targets keep the 6:3:1 shape. Empty (the default): every layer at the same fraction. Only with
 *   `scope: layer` (a global ranking has no per-layer fraction to scale). Li et al. keep int(n × (1 − p)) filters
 *   (res56prune.py); the engine's fraction removes floor(n × fraction), i.e. keeps one more where n × p is not whole.
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
    stage_rates: { type: "string", default: "", description: `relative pruning rates by layer-name prefix, scaled together to the target (${STAGE_RATES_FORMAT}; Li et al.'s ResNet-56-pruned-B); empty: one fraction for all` },
  },
  needs: {},
  granularity: "channel",
  ...channelHooks,
  rateMultiplier: stageMultiplier,
  paramsProblem(p) {
    const rates = parseStageRates(String(p.stage_rates ?? ""));
    if (typeof rates === "string") return rates;
    return rates.size > 0 && p.scope !== "layer" ? `stage_rates needs scope: layer (a global ranking has no per-layer fraction to scale), got scope: ${p.scope}` : null;
  },
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
