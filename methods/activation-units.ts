/** What the channel criteria that judge a channel by its output activation share (apoz, hrank). */
import type { HyperParamSpec } from "../src/core/types.js";
import type { ChannelActivationStats, ChannelGroupView, ChannelMember } from "./types.js";

/** The score sample of an activation criterion: `batches` consecutive batches of `batch_size` training images. */
export const ACTIVATION_BATCH_PARAMS: Record<string, HyperParamSpec> = {
  batches: { type: "integer", default: 5, min: 1, max: 1000, description: "training batches the activation statistics are gathered over" },
  batch_size: { type: "integer", default: 128, min: 1, max: 4096, description: "images per batch" },
};

/** The members whose layers produce a group's units: conv and dense filters, and depthwise filters that pass them on. */
export function producingLayers(g: ChannelGroupView): ChannelMember[] {
  return g.members.filter((m) => m.side === "out" && m.role === "kernel" && (m.layerKind === "conv" || m.layerKind === "dense" || m.layerKind === "depthwise"));
}

/**
 * A per-unit value from per-output-channel statistics of the producing layers: each unit's channels averaged within a
 * layer, then the layers averaged (a residual stream: every joined block's output; a MobileNetV2 expansion: after the
 * 1x1 conv and after the depthwise conv). A layer whose statistic is absent does not count; a group none of whose
 * layers has it is an error.
 */
export function unitStatistic(
  g: ChannelGroupView, stats: ReadonlyMap<string, ChannelActivationStats>, pick: (s: ChannelActivationStats) => Float32Array | undefined,
): Float32Array {
  const sum = new Float64Array(g.size);
  let layers = 0;
  for (const m of producingLayers(g)) {
    const s = stats.get(m.layer);
    const values = s && pick(s);
    if (!values) continue;
    layers++;
    m.indices.forEach((idx, u) => {
      let t = 0;
      for (const c of idx) t += values[c];
      sum[u] += idx.length > 0 ? t / idx.length : 0;
    });
  }
  if (layers === 0) throw new Error(`channel group ${g.name}: none of its producing layers (${producingLayers(g).map((m) => m.layer).join(", ")}) has output activation statistics`);
  return Float32Array.from(sum, (v) => v / layers);
}
