/**
 * Which tensors a method may prune. Conv, depthwise and dense kernels are candidates; the classifier and the first
 * layer can be excluded; biases and normalization γ/β are excluded unless the policy says otherwise (the policy's
 * `batchNorm` switch covers layer norm's γ/β too: both rescale a channel rather than connect two units). Embeddings
 * (class token, position table) are never offered, and attention owns no tensor.
 */
import { hasKernel, isNorm, type LayerInfo, tensorNames } from "../archs/ops.js";
import type { PrunablePolicy } from "../core/types.js";

export interface PrunableRef {
  name: string;
  layer: string;
  layerKind: LayerInfo["kind"];
  role: "kernel" | "bias" | "gamma" | "beta";
}

export function prunableTensors(layers: readonly LayerInfo[], policy: PrunablePolicy): PrunableRef[] {
  const weighted = layers.filter((l) => hasKernel(l.kind));
  const first = weighted[0]?.name;
  const classifier = weighted[weighted.length - 1]?.name;
  const out: PrunableRef[] = [];
  for (const layer of layers) {
    if (isNorm(layer.kind)) {
      if (policy.batchNorm) {
        out.push({ name: tensorNames.gamma(layer.name), layer: layer.name, layerKind: layer.kind, role: "gamma" });
        out.push({ name: tensorNames.beta(layer.name), layer: layer.name, layerKind: layer.kind, role: "beta" });
      }
      continue;
    }
    if (!hasKernel(layer.kind)) continue;
    if (layer.name === classifier && !policy.classifier) continue;
    if (layer.name === first && !policy.firstLayer) continue;
    out.push({ name: tensorNames.kernel(layer.name), layer: layer.name, layerKind: layer.kind, role: "kernel" });
    if (layer.hasBias && policy.biases) out.push({ name: tensorNames.bias(layer.name), layer: layer.name, layerKind: layer.kind, role: "bias" });
  }
  return out;
}

export function prunableParamCount(layers: readonly LayerInfo[], policy: PrunablePolicy): number {
  const byLayer = new Map(layers.map((l) => [l.name, l]));
  return prunableTensors(layers, policy).reduce((n, r) => {
    const shape = byLayer.get(r.layer)!.weightShape;
    // Kernels have the layer's weight shape; biases and BN gamma/beta have one value per output channel.
    return n + (r.role === "kernel" ? shape.reduce((a, b) => a * b, 1) : shape[shape.length - 1]);
  }, 0);
}
