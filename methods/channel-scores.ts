/** What the channel (structured) methods share: which groups they offer for pruning, and how the budget is spread. */
import type { HyperParamSpec, HyperValue } from "../src/core/types.js";
import type { ChannelGroupView, ChannelMember } from "./types.js";

/**
 * Hyperparameters of every channel method. `layers` and `residual` choose the groups scored (the others keep all
 * their channels), `skip` names further layers to keep whole; `scope`, `min_keep` and `round_to` are handed to the
 * engine's allocation.
 */
export const CHANNEL_PARAMS: Record<string, HyperParamSpec> = {
  scope: { type: "string", default: "layer", choices: ["layer", "global"], description: "remove the same fraction of every group (layer) or rank all channels together (global)" },
  min_keep: { type: "number", default: 0.1, min: 0, max: 1, description: "every pruned group keeps at least this fraction of its channels (and at least one)" },
  round_to: { type: "integer", default: 1, min: 1, max: 1024, description: "kept channel counts are multiples of this (where a group has that many)" },
  layers: { type: "string", default: "all", choices: ["all", "conv"], description: "prune the channels of conv layers only (conv) or neurons of dense layers too (all)" },
  residual: { type: "string", default: "prune", choices: ["prune", "skip"], description: "prune channels shared by residual adds (prune) or keep residual streams whole (skip)" },
  skip: { type: "string", default: "", layerNames: true, description: "comma-separated layer names whose output channels are kept whole (e.g. sensitive layers); a name that is not a layer of the arch is an error" },
};

/** The groups a channel method scores under its `layers`, `residual` and `skip` parameters. */
export function eligibleGroups(groups: readonly ChannelGroupView[], params: Readonly<Record<string, HyperValue>>): ChannelGroupView[] {
  const skip = new Set(String(params.skip ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  return groups.filter((g) => {
    if (params.residual === "skip" && g.producers.length > 1) return false;
    if (g.producers.some((p) => skip.has(p))) return false;
    if (params.layers === "conv" && !producingKernels(g).some((m) => m.layerKind === "conv")) return false;
    return true;
  });
}

/** The kernels that produce a group's units (its filters, or a dense layer's incoming weights per neuron). */
export function producingKernels(g: ChannelGroupView): ChannelMember[] {
  return g.members.filter((m) => m.side === "out" && m.role === "kernel" && (m.layerKind === "conv" || m.layerKind === "dense"));
}

/** Σ|w| over the slice of `m` that each unit covers (the whole filter of a conv output channel). */
export function sumAbsPerUnit(m: ChannelMember): Float32Array {
  const inner = m.shape.slice(m.axis + 1).reduce((a, b) => a * b, 1);
  const outer = m.shape.slice(0, m.axis).reduce((a, b) => a * b, 1);
  const n = m.shape[m.axis];
  return Float32Array.from(m.indices, (idx) => {
    let s = 0;
    for (const a of idx) for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) s += Math.abs(m.values[(o * n + a) * inner + i]);
    return s;
  });
}

export const channelHooks = {
  distribution: (p: Readonly<Record<string, HyperValue>>) => (p.scope === "global" ? "global" as const : "layer" as const),
  minDensity: (p: Readonly<Record<string, HyperValue>>) => Number(p.min_keep),
  roundTo: (p: Readonly<Record<string, HyperValue>>) => Number(p.round_to),
};
