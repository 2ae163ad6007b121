/**
 * An architecture is written once, against this small set of operations, and run under two interpreters:
 * `ShapeOps` walks it symbolically to produce the layer table (params, MACs) that metrics are computed from,
 * and `TensorOps` (src/archs/tensor-ops.ts) runs it on tfjs tensors. So counts and the real network can never
 * disagree about a layer.
 */
import type { LayerKind } from "../core/types.js";

export type Padding = "same" | "valid" | number;

export interface ConvOptions {
  filters: number;
  kernel: number;
  stride?: number;
  padding: Padding;
  bias?: boolean;
}

export interface DenseOptions {
  units: number;
  bias?: boolean;
}

export interface Ops<V> {
  conv(name: string, x: V, options: ConvOptions): V;
  dense(name: string, x: V, options: DenseOptions): V;
  batchNorm(name: string, x: V): V;
  relu(x: V): V;
  maxPool(x: V, size: number, stride?: number): V;
  globalAvgPool(x: V): V;
  flatten(x: V): V;
  add(a: V, b: V): V;
}

export interface ArchDef {
  name: string;
  summary: string;
  citation: string;
  /** [h, w, c] the architecture was designed for; null = adapts to any image input. */
  inputShape: [number, number, number] | null;
  /** Fixed number of classes, or null when it follows the dataset. */
  numClasses: number | null;
  build<V>(ops: Ops<V>, input: V, numClasses: number): V;
}

/** One parametrized layer, as the symbolic walk sees it. Shapes exclude the batch dimension. */
export interface LayerInfo {
  name: string;
  kind: LayerKind;
  /** conv: [kh, kw, cin, cout]; dense: [in, out]; batchnorm: [channels]. */
  weightShape: number[];
  hasBias: boolean;
  inputShape: number[];
  outputShape: number[];
  /** Trainable parameters: weights + bias (BN: gamma + beta; running statistics are not parameters). */
  params: number;
  /** Multiply-accumulates for one input (conv and dense only; BN counts 0). */
  macs: number;
}

/** Names of a layer's tensors, shared by the model, the masks and saved weights. */
export const tensorNames = {
  kernel: (layer: string) => `${layer}/kernel`,
  bias: (layer: string) => `${layer}/bias`,
  gamma: (layer: string) => `${layer}/gamma`,
  beta: (layer: string) => `${layer}/beta`,
  movingMean: (layer: string) => `${layer}/moving_mean`,
  movingVar: (layer: string) => `${layer}/moving_var`,
};

/** Output size of a conv/pool along one axis, with TF's 'same'/'valid' conventions or an explicit pad. */
export function outputSize(input: number, kernel: number, stride: number, padding: Padding): number {
  if (padding === "same") return Math.ceil(input / stride);
  const pad = padding === "valid" ? 0 : padding;
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}

export class ShapeOps implements Ops<number[]> {
  readonly layers: LayerInfo[] = [];

  conv(name: string, x: number[], o: ConvOptions): number[] {
    const [h, w, cin] = expectRank(x, 3, name);
    const stride = o.stride ?? 1;
    const out = [outputSize(h, o.kernel, stride, o.padding), outputSize(w, o.kernel, stride, o.padding), o.filters];
    const hasBias = o.bias ?? true;
    const weights = o.kernel * o.kernel * cin * o.filters;
    this.layers.push({
      name, kind: "conv", weightShape: [o.kernel, o.kernel, cin, o.filters], hasBias,
      inputShape: x, outputShape: out,
      params: weights + (hasBias ? o.filters : 0),
      macs: out[0] * out[1] * o.kernel * o.kernel * cin * o.filters,
    });
    return out;
  }

  dense(name: string, x: number[], o: DenseOptions): number[] {
    const [units] = expectRank(x, 1, name);
    const hasBias = o.bias ?? true;
    this.layers.push({
      name, kind: "dense", weightShape: [units, o.units], hasBias, inputShape: x, outputShape: [o.units],
      params: units * o.units + (hasBias ? o.units : 0), macs: units * o.units,
    });
    return [o.units];
  }

  batchNorm(name: string, x: number[]): number[] {
    const channels = x[x.length - 1];
    this.layers.push({
      name, kind: "batchnorm", weightShape: [channels], hasBias: true, inputShape: x, outputShape: x,
      params: 2 * channels, macs: 0,
    });
    return x;
  }

  relu(x: number[]): number[] { return x; }

  maxPool(x: number[], size: number, stride = size): number[] {
    const [h, w, c] = expectRank(x, 3, "maxPool");
    return [outputSize(h, size, stride, "valid"), outputSize(w, size, stride, "valid"), c];
  }

  globalAvgPool(x: number[]): number[] {
    return [expectRank(x, 3, "globalAvgPool")[2]];
  }

  flatten(x: number[]): number[] { return [x.reduce((a, b) => a * b, 1)]; }

  add(a: number[], b: number[]): number[] {
    if (a.join() !== b.join()) throw new Error(`add: shapes differ (${a} vs ${b})`);
    return a;
  }
}

function expectRank(x: number[], rank: number, where: string): number[] {
  if (x.length !== rank) throw new Error(`${where}: expected a rank-${rank} input, got shape [${x}]`);
  return x;
}
