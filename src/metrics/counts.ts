/**
 * Parameter, sparsity and MAC accounting. Conventions (README "Metrics", GUIDE section 2):
 * - params count weights, biases and BN gamma/beta, never BN running statistics;
 * - MACs are multiply-accumulates of conv, depthwise and dense layers (and attention's two matmuls) for one input
 *   ("FLOPs (MACs)"); BN, ReLU, pooling and residual adds count 0; Han 2015 counts 2x;
 * - effective MACs scale each layer's MACs by its kernel density (unstructured pruning);
 * - compression ratio = total params / nonzero params (ShrinkBench).
 */
import { hasKernel, tensorNames, type LayerInfo } from "../archs/ops.js";
import type { LayerCount } from "../core/types.js";

export interface ModelCounts {
  paramsTotal: number;
  paramsNonzero: number;
  paramsPrunable: number;
  prunableNonzero: number;
  macsDense: number;
  macsEffective: number;
}

export function countNonzero(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) n++;
  return n;
}

/**
 * Per-layer counts from the layer table and the nonzero count of each layer's kernel (weights) and other
 * parameters (bias or BN). `kernelNonzero` / `otherNonzero` map a layer name to its current nonzero count.
 */
export function layerCounts(
  layers: readonly LayerInfo[],
  kernelNonzero: ReadonlyMap<string, number>,
  otherNonzero: ReadonlyMap<string, number>,
  prunableLayers: ReadonlySet<string>,
): LayerCount[] {
  return layers.map((layer) => {
    const kernelSize = hasKernel(layer.kind) ? layer.weightShape.reduce((a, b) => a * b, 1) : 0;
    const kernelNz = kernelNonzero.get(layer.name) ?? kernelSize;
    const otherSize = layer.params - kernelSize;
    const otherNz = otherNonzero.get(layer.name) ?? otherSize;
    const density = kernelSize > 0 ? kernelNz / kernelSize : 1;
    return {
      name: layer.name,
      kind: layer.kind,
      shape: layer.weightShape,
      params: layer.params,
      nonzero: kernelNz + otherNz,
      macs: layer.macs,
      macsEffective: layer.macs * density,
      prunable: prunableLayers.has(layer.name),
    };
  });
}

/**
 * Dense and effective forward MACs of one input under kernel masks (`maskOf`: a tensor's mask, or undefined): each
 * layer's MACs scale with its kernel's mask density (the README's convention for unstructured pruning); masks of
 * biases or batch norm change no MACs.
 */
export function maskedMacs(layers: readonly LayerInfo[], maskOf: (tensor: string) => ArrayLike<number> | undefined): { dense: number; effective: number } {
  const survivors = new Map<string, number>();
  for (const layer of layers) {
    const m = maskOf(tensorNames.kernel(layer.name));
    if (m) survivors.set(layer.name, countNonzero(m));
  }
  const counts = modelCounts(layerCounts(layers, survivors, new Map(), new Set()), { size: 0, nonzero: 0 });
  return { dense: counts.macsDense, effective: counts.macsEffective };
}

/** Model totals; `prunable` sums the size and nonzero count of the tensors the policy lets methods prune. */
export function modelCounts(rows: readonly LayerCount[], prunable: { size: number; nonzero: number }): ModelCounts {
  return {
    paramsTotal: sum(rows.map((r) => r.params)),
    paramsNonzero: sum(rows.map((r) => r.nonzero)),
    paramsPrunable: prunable.size,
    prunableNonzero: prunable.nonzero,
    macsDense: sum(rows.map((r) => r.macs)),
    macsEffective: sum(rows.map((r) => r.macsEffective)),
  };
}

export const compressionRatio = (paramsTotal: number, paramsNonzero: number): number => paramsTotal / paramsNonzero;
export const sparsityOf = (prunable: number, prunableNonzero: number): number => (prunable === 0 ? 0 : 1 - prunableNonzero / prunable);
export const theoreticalSpeedup = (macsDense: number, macsEffective: number): number => macsDense / macsEffective;

/**
 * ShrinkBench's fraction_to_keep: the fraction of prunable weights to keep so that the whole model reaches
 * `compression` (total / nonzero), given that non-prunable parameters all stay.
 */
export function keepFractionForCompression(compression: number, paramsTotal: number, paramsPrunable: number): number {
  const nonPrunable = paramsTotal - paramsPrunable;
  const keep = (paramsTotal / compression - nonPrunable) / paramsPrunable;
  if (!(keep > 0 && keep <= 1)) {
    throw new Error(
      `compression ${compression}x is unreachable: ${nonPrunable} of ${paramsTotal} parameters are not prunable ` +
        `(max ${(paramsTotal / Math.max(nonPrunable, 1)).toFixed(1)}x)`,
    );
  }
  return keep;
}

/** The q-quantile of `values` with linear interpolation between order statistics (numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/**
 * Weights that are nonzero where their mask is 0 (masked_nonzero): a pruned weight must stay exactly 0 through
 * fine-tuning, so anything but 0 means a training path let a masked weight move. `weights` and `masks` by tensor name;
 * tensors without a mask are not counted.
 */
export function maskedNonzero(weights: ReadonlyMap<string, ArrayLike<number>>, masks: ReadonlyMap<string, ArrayLike<number>>): number {
  let n = 0;
  for (const [name, mask] of masks) {
    const w = weights.get(name);
    if (!w) throw new Error(`mask for unknown tensor ${name}`);
    if (w.length !== mask.length) throw new Error(`mask of ${name} has ${mask.length} entries, the tensor ${w.length}`);
    for (let i = 0; i < mask.length; i++) if (mask[i] === 0 && w[i] !== 0) n++;
  }
  return n;
}
