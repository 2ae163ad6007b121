/**
 * The ScoreContext a method's score function sees: its tensors, hyperparameters and seeded generator, plus the
 * data-dependent capabilities it declares in `needs` (gradients of the training loss, mean |input activation| per
 * layer). The engine builds it from the declaration alone and never asks which method it runs.
 *
 * Every statistic is gathered on the batches of `scoreBatches`: a shuffle of the training split seeded by the run's
 * seed only, so every method and target of a seed scores on the same images (ShrinkBench's one batch
 * `next(iter(train_dl))` per seeded experiment), and another seed on other images.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BatchSpec, PrunableTensor, PruningMethod, ScoreContext } from "../../methods/index.js";
import type { AttentionOptions, ConvOptions, DenseOptions, DepthwiseOptions, Ops, ZeroPadShortcutOptions } from "../archs/ops.js";
import { TensorOps } from "../archs/tensor-ops.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";
import type { HyperValue } from "../core/types.js";
import type { StagedSplit } from "../train/loop.js";
import { forward, type Model } from "../train/model.js";

export interface ScoreInputs {
  method: PruningMethod;
  params: Readonly<Record<string, HyperValue>>;
  tensors: readonly PrunableTensor[];
  /** The model as it is when scored (pruned weights already zero); scoring reads it and changes nothing. */
  model: Model;
  train: StagedSplit;
  seed: number;
  /** Which pruning step of the run this is (round k of an iterative schedule): its random draws differ from step to step. */
  step?: number;
}

export function scoreContext(inputs: ScoreInputs): ScoreContext {
  const { method, model, train, seed, tensors } = inputs;
  const names = tensors.map((t) => t.name);
  const layers = [...new Set(tensors.map((t) => t.layer))];
  return {
    tensors,
    params: inputs.params,
    // Step 0 keeps the stream name one-shot runs always had, so their results did not move with the engine.
    random: makeRng(seed, (inputs.step ?? 0) === 0 ? `method:${method.name}` : `method:${method.name}:${inputs.step}`),
    gradients: method.needs.gradients ? (spec) => meanGradients(model, train, names, spec.batches, spec.batchSize, seed, spec.mode) : undefined,
    activations: method.needs.activations ? (spec) => meanInputActivations(model, train, layers, spec, seed) : undefined,
    pathGradients: method.needs.pathGradients ? async () => pathGradients(model, names) : undefined,
  };
}

/**
 * The training-image indices of each score batch: the first `batches` batches of a shuffle seeded by `seed` alone,
 * the last one partial when the split runs out, and never more than one pass over the split.
 */
export function scoreBatches(count: number, batches: number, batchSize: number, seed: number): Int32Array[] {
  const order = shuffleInPlace(new Int32Array(count).map((_, i) => i), makeRng(seed, "score-batches"));
  const n = Math.min(batches, Math.ceil(count / batchSize));
  return Array.from({ length: n }, (_, b) => order.subarray(b * batchSize, Math.min(count, (b + 1) * batchSize)));
}

/**
 * Gradient of the mean cross-entropy training loss per tensor, averaged over the score batches (each batch's mean
 * loss weighs the same). In "train" mode batch norm uses batch statistics, as in a training step; its running
 * statistics are not updated (the queued updates are dropped), so scoring leaves the model as it was.
 */
export async function meanGradients(
  model: Model, train: StagedSplit, names: string[], batches: number, batchSize: number, seed: number,
  mode: BatchSpec["mode"] = "train",
): Promise<Map<string, Float32Array>> {
  const plan = scoreBatches(train.count, batches, batchSize, seed);
  const vars = names.map((name) => model.params.get(name)!);
  const sums: tf.Tensor[] = vars.map((v) => tf.keep(tf.zerosLike(v)));
  for (const rows of plan) {
    tf.tidy(() => {
      const idx = tf.tensor1d(rows, "int32");
      const labels = tf.gather(train.y, idx);
      let dropped: Array<[string, tf.Tensor]> = [];
      const { grads } = tf.variableGrads(() => {
        const { logits, stateUpdates } = forward(model, tf.gather(train.x, idx), mode === "train");
        dropped = stateUpdates;
        return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, model.numClasses), logits) as tf.Scalar;
      }, vars);
      for (const [, t] of dropped) t.dispose();
      vars.forEach((v, i) => {
        const next = tf.keep(tf.add(sums[i], grads[v.name]));
        sums[i].dispose();
        sums[i] = next;
      });
    });
  }
  const out = new Map(names.map((name, i) => [name, (sums[i].dataSync() as Float32Array).map((g) => g / plan.length)]));
  sums.forEach((t) => t.dispose());
  return out;
}

/**
 * Mean |input| per input unit of each of `layers` (last axis of the layer's input: a conv's channels, a dense layer's
 * features, a batch norm's channels), over every image of the score batches and every spatial position. The model
 * runs forward through `InputRecorder`, which notes each parametrized layer's input on its way to the tensor ops.
 */
export async function meanInputActivations(model: Model, train: StagedSplit, layers: readonly string[], spec: BatchSpec, seed: number): Promise<Map<string, Float32Array>> {
  const wanted = new Set(layers);
  const sums = new Map<string, tf.Tensor>();
  const counts = new Map<string, number>();
  for (const rows of scoreBatches(train.count, spec.batches, spec.batchSize, seed)) {
    tf.tidy(() => {
      const inner = new TensorOps(new Map<string, tf.Tensor>([...model.params, ...model.state]), spec.mode === "train");
      const recorder = new InputRecorder(inner, (layer, x) => {
        if (!wanted.has(layer)) return;
        const axes = x.shape.slice(0, -1).map((_, i) => i);
        const batchSum = tf.sum(tf.abs(x), axes);
        const prev = sums.get(layer);
        sums.set(layer, tf.keep(prev ? tf.add(prev, batchSum) : batchSum));
        prev?.dispose();
        counts.set(layer, (counts.get(layer) ?? 0) + x.size / x.shape[x.shape.length - 1]);
      });
      model.arch.build(recorder, tf.gather(train.x, tf.tensor1d(rows, "int32")), model.numClasses);
      for (const [, t] of inner.stateUpdates) t.dispose();
    });
  }
  const out = new Map<string, Float32Array>();
  for (const layer of layers) {
    const sum = sums.get(layer);
    if (!sum) throw new Error(`layer ${layer} has prunable tensors but its input was never seen running ${model.arch.name}`);
    const n = counts.get(layer)!;
    out.set(layer, (sum.dataSync() as Float32Array).map((s) => s / n));
    sum.dispose();
  }
  return out;
}

/** Runs an architecture on another Ops, telling `onInput` the input of every layer a method may prune a tensor of. */
export class InputRecorder<V> implements Ops<V> {
  constructor(private readonly inner: Ops<V>, private readonly onInput: (layer: string, x: V) => void) {}

  conv(name: string, x: V, o: ConvOptions): V { this.onInput(name, x); return this.inner.conv(name, x, o); }
  dense(name: string, x: V, o: DenseOptions): V { this.onInput(name, x); return this.inner.dense(name, x, o); }
  batchNorm(name: string, x: V): V { this.onInput(name, x); return this.inner.batchNorm(name, x); }
  relu(x: V): V { return this.inner.relu(x); }
  maxPool(x: V, size: number, stride?: number): V { return this.inner.maxPool(x, size, stride); }
  globalAvgPool(x: V): V { return this.inner.globalAvgPool(x); }
  flatten(x: V): V { return this.inner.flatten(x); }
  add(a: V, b: V): V { return this.inner.add(a, b); }
  depthwiseConv(name: string, x: V, o: DepthwiseOptions): V { this.onInput(name, x); return this.inner.depthwiseConv(name, x, o); }
  layerNorm(name: string, x: V): V { this.onInput(name, x); return this.inner.layerNorm(name, x); }
  gelu(x: V): V { return this.inner.gelu(x); }
  zeroPadShortcut(x: V, o: ZeroPadShortcutOptions): V { return this.inner.zeroPadShortcut(x, o); }
  toTokens(x: V): V { return this.inner.toTokens(x); }
  classToken(name: string, x: V): V { return this.inner.classToken(name, x); }
  positionEmbedding(name: string, x: V): V { return this.inner.positionEmbedding(name, x); }
  takeToken(x: V, index: number): V { return this.inner.takeToken(x, index); }
  attention(name: string, q: V, k: V, v: V, o: AttentionOptions): V { return this.inner.attention(name, q, k, v, o); }
}

/**
 * ∂R/∂θ at |θ| for R = 1ᵀ f(1): the sum of the network's outputs on one all-ones input, every parameter replaced by
 * its absolute value (pruned ones stay 0), inference mode (batch norm on its running statistics). Needs no data:
 * SynFlow's objective (Tanaka et al. 2020), whose θ ⊙ ∂R/∂θ sums to R in every layer (synaptic flow is conserved).
 * The model's weights are restored afterwards.
 */
export function pathGradients(model: Model, names: string[]): Map<string, Float32Array> {
  const originals = new Map([...model.params].map(([name, v]) => [name, tf.keep(v.clone())]));
  try {
    for (const v of model.params.values()) tf.tidy(() => v.assign(tf.abs(v)));
    const vars = names.map((name) => model.params.get(name)!);
    const out = new Map<string, Float32Array>();
    tf.tidy(() => {
      const ones = tf.ones([1, ...model.inputShape]);
      const { grads } = tf.variableGrads(() => tf.sum(forward(model, ones, false).logits) as tf.Scalar, vars);
      names.forEach((name, i) => out.set(name, grads[vars[i].name].dataSync() as Float32Array));
    });
    return out;
  } finally {
    for (const [name, v] of model.params) {
      const original = originals.get(name)!;
      v.assign(original);
      original.dispose();
    }
  }
}
