/**
 * Which tensors a method may prune. Conv and dense kernels are candidates; the classifier and the first layer can
 * be excluded; biases and batch-norm gamma/beta are excluded unless the policy says otherwise.
 */
import { type LayerInfo, tensorNames } from "../archs/ops.js";
import type { PrunablePolicy } from "../core/types.js";

export interface PrunableRef {
  name: string;
  layer: string;
  layerKind: LayerInfo["kind"];
  role: "kernel" | "bias" | "gamma" | "beta";
}

export function prunableTensors(layers: readonly LayerInfo[], policy: PrunablePolicy): PrunableRef[] {
  const weighted = layers.filter((l) => l.kind !== "batchnorm");
  const first = weighted[0]?.name;
  const classifier = weighted[weighted.length - 1]?.name;
  const out: PrunableRef[] = [];
  for (const layer of layers) {
    if (layer.kind === "batchnorm") {
      if (policy.batchNorm) {
        out.push({ name: tensorNames.gamma(layer.name), layer: layer.name, layerKind: layer.kind, role: "gamma" });
        out.push({ name: tensorNames.beta(layer.name), layer: layer.name, layerKind: layer.kind, role: "beta" });
      }
      continue;
    }
    if (layer.name === classifier && !policy.classifier) continue;
    if (layer.name === first && !policy.firstLayer) continue;
    out.push({ name: tensorNames.kernel(layer.name), layer: layer.name, layerKind: layer.kind, role: "kernel" });
    if (layer.hasBias && policy.biases) out.push({ name: tensorNames.bias(layer.name), layer: layer.name, layerKind: layer.kind, role: "bias" });
  }
  return out;
}

/** Number of weights in the tensors the policy lets methods prune (the denominator of sparsity). */
export function prunableParamCount(layers: readonly LayerInfo[], policy: PrunablePolicy): number {
  const byLayer = new Map(layers.map((l) => [l.name, l]));
  return prunableTensors(layers, policy).reduce((n, r) => {
    const shape = byLayer.get(r.layer)!.weightShape;
    // Kernels have the layer's weight shape; biases and BN gamma/beta have one value per output channel.
    return n + (r.role === "kernel" ? shape.reduce((a, b) => a * b, 1) : shape[shape.length - 1]);
  }, 0);
}
