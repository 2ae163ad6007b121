/**
 * A network as plain named tfjs variables plus the architecture that reads them. Initialization is seeded in JS
 * (not tfjs) so the same seed gives the same weights on every backend.
 */
import * as tf from "@tensorflow/tfjs-core";
import { layerTable, type ArchDef, type LayerInfo } from "../archs/index.js";
import { hasKernel, tensorNames } from "../archs/ops.js";
import { releasingOps, TensorOps } from "../archs/tensor-ops.js";
import type { SparsePatterns } from "../backend/sparse-ops.js";
import { makeRng, normal } from "../core/rng.js";
import type { InitName, LayerKind } from "../core/types.js";

export interface Model {
  arch: ArchDef;
  inputShape: [number, number, number];
  numClasses: number;
  layers: LayerInfo[];
  /** Trainable tensors by name, in layer order. */
  params: Map<string, tf.Variable>;
  /** Non-trainable state (BN running statistics). */
  state: Map<string, tf.Variable>;
}

/**
 * A freshly initialised model. A run passes its config's `model.init` (the grid's default is torch-default); the
 * parameter's own default, he-uniform, is the scheme every caller had before the choice existed, kept for callers
 * outside a run (kernel tests, throughput benchmarks) whose numbers were measured with it.
 */
export function createModel(arch: ArchDef, inputShape: [number, number, number], numClasses: number, seed: number, init: InitName = "he-uniform"): Model {
  const layers = layerTable(arch, inputShape, numClasses);
  const params = new Map<string, tf.Variable>();
  const state = new Map<string, tf.Variable>();
  // Variables survive tidy; their initial-value tensors do not need to.
  tf.tidy(() => initialize(layers, params, state, seed, init));
  // An imported model starts from its file's weights (src/archs/layers-model.ts), every tensor of them.
  if (arch.initialWeights) {
    for (const [name, v] of [...params, ...state]) {
      const w = arch.initialWeights.get(name);
      if (!w || w.shape.join() !== v.shape.join()) throw new Error(`${arch.name}: its initial weights have ${w ? `shape [${w.shape}] for` : "no"} tensor ${name}${w ? `, the model [${v.shape}]` : ""}`);
      tf.tidy(() => v.assign(tf.tensor(w.data, [...w.shape])));
    }
  }
  return { arch, inputShape, numClasses, layers, params, state };
}

let modelCount = 0;

/**
 * Fans of a conv kernel [kh, kw, cin, cout] or dense kernel [in, out], as PyTorch and Keras count them. A depthwise
 * kernel [kh, kw, c, 1] is counted as PyTorch counts its weight [c, 1, kh, kw] (groups = c): fan_in kh·kw,
 * fan_out c·kh·kw (Keras would say c·kh·kw and kh·kw); the CIFAR MobileNetV2 this serves is a PyTorch model.
 */
export function fans(shape: readonly number[], kind: LayerKind = "conv"): { fanIn: number; fanOut: number } {
  const size = shape.reduce((a, b) => a * b, 1);
  if (kind === "depthwise") return { fanIn: size / shape[2], fanOut: size };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: size / shape[shape.length - 1], fanOut: receptive * shape[shape.length - 1] };
}

/** A kernel's values and its bias's (null: zeros) under `init`, drawn from the layer's own seeded streams. */
export function initialValues(init: InitName, shape: readonly number[], seed: number, layerName: string, kind: LayerKind = "conv"): { kernel: Float32Array; bias: Float32Array | null } {
  const { fanIn, fanOut } = fans(shape, kind);
  const rng = makeRng(seed, `init:${layerName}`);
  const kernel = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const uniform = (out: Float32Array, limit: number, r: () => number) => {
    for (let i = 0; i < out.length; i++) out[i] = (2 * r() - 1) * limit;
  };
  switch (init) {
    case "he-uniform":
      // He (Kaiming) uniform for ReLU networks: U(-sqrt(6/fan_in), +sqrt(6/fan_in)).
      uniform(kernel, Math.sqrt(6 / fanIn), rng);
      return { kernel, bias: null };
    case "torch-default": {
      // nn.Linear / nn.Conv2d reset_parameters: kaiming_uniform_(a=sqrt(5)) gives bound gain*sqrt(3/fan_in) with
      // gain sqrt(2/(1+5)), i.e. 1/sqrt(fan_in); the bias is U(+-1/sqrt(fan_in)) too, from its own stream.
      const bound = 1 / Math.sqrt(fanIn);
      uniform(kernel, bound, rng);
      const bias = new Float32Array(shape[shape.length - 1]);
      uniform(bias, bound, makeRng(seed, `init-bias:${layerName}`));
      return { kernel, bias };
    }
    case "he-normal": {
      // kaiming_normal_(mode="fan_out", nonlinearity="relu"), as torchvision's ResNets: N(0, 2/fan_out).
      const std = Math.sqrt(2 / fanOut);
      for (let i = 0; i < kernel.length; i++) kernel[i] = std * normal(rng);
      return { kernel, bias: null };
    }
    case "glorot-uniform":
      // Keras's default: U(+-sqrt(6/(fan_in + fan_out))).
      uniform(kernel, Math.sqrt(6 / (fanIn + fanOut)), rng);
      return { kernel, bias: null };
  }
}

/**
 * A class token's or position table's initial values, whatever `model.init` says (fans mean nothing for a table):
 * timm's and DeiT's trunc_normal_(std=0.02), whose default bounds ±2 lie 100 standard deviations out, i.e. N(0, 0.02²).
 */
export function embeddingValues(shape: readonly number[], seed: number, layerName: string): Float32Array {
  const rng = makeRng(seed, `init:${layerName}`);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 0.02 * normal(rng));
}

function initialize(layers: LayerInfo[], params: Map<string, tf.Variable>, state: Map<string, tf.Variable>, seed: number, init: InitName): void {
  // tfjs registers variables by name process-wide: each model's get a unique prefix. Maps stay keyed by tensor name.
  const prefix = `m${++modelCount}:`;
  const variable = (init: tf.Tensor, trainable: boolean, name: string) => tf.variable(init, trainable, prefix + name);
  for (const layer of layers) {
    if (layer.kind === "batchnorm") {
      const c = layer.weightShape[0];
      params.set(tensorNames.gamma(layer.name), variable(tf.ones([c]), true, tensorNames.gamma(layer.name)));
      params.set(tensorNames.beta(layer.name), variable(tf.zeros([c]), true, tensorNames.beta(layer.name)));
      state.set(tensorNames.movingMean(layer.name), variable(tf.zeros([c]), false, tensorNames.movingMean(layer.name)));
      state.set(tensorNames.movingVar(layer.name), variable(tf.ones([c]), false, tensorNames.movingVar(layer.name)));
      continue;
    }
    if (layer.kind === "layernorm") {
      const c = layer.weightShape[0];
      params.set(tensorNames.gamma(layer.name), variable(tf.ones([c]), true, tensorNames.gamma(layer.name)));
      params.set(tensorNames.beta(layer.name), variable(tf.zeros([c]), true, tensorNames.beta(layer.name)));
      continue;
    }
    if (layer.kind === "embedding") {
      const name = tensorNames.embedding(layer.name);
      params.set(name, variable(tf.tensor(embeddingValues(layer.weightShape, seed, layer.name), layer.weightShape), true, name));
      continue;
    }
    if (!hasKernel(layer.kind)) continue;
    const shape = layer.weightShape;
    const values = initialValues(init, shape, seed, layer.name, layer.kind);
    const kernel = tensorNames.kernel(layer.name);
    params.set(kernel, variable(tf.tensor(values.kernel, shape), true, kernel));
    if (layer.hasBias) {
      const bias = tensorNames.bias(layer.name);
      // A depthwise kernel [kh, kw, c, 1] has a bias per channel, not per (single) output of each channel.
      const c = layer.kind === "depthwise" ? shape[2] : shape[shape.length - 1];
      params.set(bias, variable(values.bias?.length === c ? tf.tensor(values.bias, [c]) : tf.zeros([c]), true, bias));
    }
  }
}

/** Gradients from tf.variableGrads re-keyed by the model's tensor names. */
export function byTensorName(model: Model, grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, v] of model.params) if (grads[v.name]) out[name] = grads[v.name];
  return out;
}

/**
 * Logits for a batch; in training mode also the BN running-statistic updates to apply after the step. With
 * `countReluZeros`, also how many ReLU outputs were exactly 0 (a device scalar, 0 without ReLUs) out of `reluUnits`.
 * With `sparse` (the masks), masked kernels sparse enough run the sparse kernels: the same function of the masked
 * weights up to float summation order, but a kernel's gradient is then computed only where its mask is 1.
 * `release` (inference only, and only where no gradient is taken through the call): free every activation after its
 * last use instead of when the caller's tidy ends; the same logits, a fraction of the memory.
 */
export function forward(model: Model, x: tf.Tensor, training: boolean, countReluZeros = false, sparse?: SparsePatterns, release = false): {
  logits: tf.Tensor2D; stateUpdates: Array<[string, tf.Tensor]>; reluZeros?: tf.Scalar; reluUnits: number;
} {
  const all = new Map<string, tf.Tensor>([...model.params, ...model.state]);
  const ops = new TensorOps(all, training, countReluZeros, sparse, x);
  const run = release && !training && !countReluZeros ? releasingOps(ops, model.arch, model.numClasses, new Set(all.values())) : ops;
  const logits = model.arch.build(run, x, model.numClasses) as tf.Tensor2D;
  const reluZeros = !countReluZeros ? undefined : ops.reluZeros.length > 0 ? tf.addN(ops.reluZeros) as tf.Scalar : tf.scalar(0);
  return { logits, stateUpdates: ops.stateUpdates, reluZeros, reluUnits: ops.reluUnits };
}

export function applyStateUpdates(model: Model, updates: Array<[string, tf.Tensor]>): void {
  for (const [name, value] of updates) {
    model.state.get(name)!.assign(value);
    value.dispose();
  }
}

/** A copy of every tensor's values (params and state), e.g. for checkpoints or the best epoch. */
/**
 * Initial weights drawn again from other seeded streams (each layer's streams prefixed by `stream`): the same
 * distribution as the model's own initialisation, an independent draw (embeddings too). Normalization parameters and
 * state keep their constant initial values: those of `initial` (the model's weights before any training) when given,
 * else the model's current ones — so a trained model's batch norm never leaks into a network said to start from
 * scratch. (The lottery-ticket control and the scratch baselines re-initialise a pruned network with these.)
 */
export function redrawnInitialWeights(
  model: Model, seed: number, init: InitName, stream: string, initial?: ReadonlyMap<string, Float32Array>,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const layer of model.layers) {
    if (layer.kind === "embedding") {
      out.set(tensorNames.embedding(layer.name), embeddingValues(layer.weightShape, seed, `${stream}:${layer.name}`));
      continue;
    }
    if (!hasKernel(layer.kind)) continue;
    const values = initialValues(init, layer.weightShape, seed, `${stream}:${layer.name}`, layer.kind);
    out.set(tensorNames.kernel(layer.name), values.kernel);
    const bias = tensorNames.bias(layer.name);
    if (model.params.has(bias)) out.set(bias, values.bias ?? new Float32Array(model.params.get(bias)!.size));
  }
  for (const [name, v] of [...model.params, ...model.state]) {
    if (!out.has(name)) out.set(name, (initial?.get(name) ?? v.dataSync()).slice() as Float32Array);
  }
  return out;
}

export function snapshot(model: Model): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of [...model.params, ...model.state]) out.set(name, v.dataSync() as Float32Array);
  return out;
}

export function restore(model: Model, values: ReadonlyMap<string, Float32Array>): void {
  for (const [name, v] of [...model.params, ...model.state]) {
    const data = values.get(name);
    if (!data) throw new Error(`checkpoint lacks tensor ${name}`);
    if (data.length !== v.size) throw new Error(`checkpoint tensor ${name} has ${data.length} values, model expects ${v.size}`);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

export function disposeModel(model: Model): void {
  for (const v of [...model.params.values(), ...model.state.values()]) v.dispose();
}
