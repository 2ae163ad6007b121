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
import type { BatchSpec, HessianGradient, PrunableTensor, PruningMethod, ScoreContext, TrainingTracker } from "../../methods/index.js";
import { DelegatingOps, type BatchNormOptions, type ConvOptions, type DenseOptions, type DepthwiseOptions, type Ops } from "../archs/ops.js";
import { TensorOps } from "../archs/tensor-ops.js";
import { makeRng, shuffleInPlace } from "../core/rng.js";
import type { HyperValue } from "../core/types.js";
import type { StagedSplit } from "../train/loop.js";
import { forward, type Model } from "../train/model.js";
import { outputActivationStats } from "./output-activations.js";
import { batchLossGradients, forEachBatchGradient } from "./batch-gradients.js";
import { kfacFactors } from "./kfac-factors.js";

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
  /** The run's training tracker (PruningMethod.tracker), passed through as ScoreContext.tracker. */
  tracker?: TrainingTracker;
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
    gradients: method.needs.gradients ? async (spec) => gradientsOver(model, train, names, specBatches(train, spec, seed, model.numClasses), spec.mode) : undefined,
    activations: method.needs.activations ? (spec) => meanInputActivations(model, train, layers, spec, seed) : undefined,
    pathGradients: method.needs.pathGradients ? async () => pathGradients(model, names) : undefined,
    hessianGradient: method.needs.hessianGradient
      ? async (spec, loss) => hessianGradient(model, train, names, specBatches(train, spec, seed, model.numClasses), spec.mode, loss?.temperature ?? 1)
      : undefined,
    outputActivations: method.needs.outputActivations
      ? async (spec, options) => outputActivationStats(model, train, specBatches(train, spec, seed, model.numClasses), spec.mode, options)
      : undefined,
    batchGradients: method.needs.batchGradients
      ? (spec, tensors, visit) => forEachBatchGradient(model, train, tensors, specBatches(train, spec, seed, model.numClasses), spec.mode, visit)
      : undefined,
    kfacFactors: method.needs.kfacFactors
      ? async (spec, options) => kfacFactors(model, train, specBatches(train, spec, seed, model.numClasses), spec.mode, options ?? {},
        makeRng(seed, `kfac-labels:${inputs.step ?? 0}`))
      : undefined,
    ...(inputs.tracker ? { tracker: inputs.tracker } : {}),
  };
}

/**
 * The training-image indices of each score batch: the first `batches` batches of a shuffle seeded by `seed` alone,
 * the last one partial when the split runs out, and never more than one pass over the split.
 */
export function scoreBatches(count: number, batches: number, batchSize: number, seed: number): Int32Array[] {
  const order = scoreOrder(count, seed);
  const n = Math.min(batches, Math.ceil(count / batchSize));
  return Array.from({ length: n }, (_, b) => order.subarray(b * batchSize, Math.min(count, (b + 1) * batchSize)));
}

/** The seed's order of the training split that every score sample is read from. */
function scoreOrder(count: number, seed: number): Int32Array {
  return shuffleInPlace(new Int32Array(count).map((_, i) => i), makeRng(seed, "score-batches"));
}

/**
 * A class-balanced sample (ClassBalancedBatches): the first `perClass` images of each class in the seed's order (the
 * order `scoreBatches` cuts, so it is the same for every method and target of a seed), grouped by class, cut into
 * `batches` consecutive batches of nearly equal size.
 */
export function classBalancedBatches(labels: Int32Array, numClasses: number, perClass: number, batches: number, seed: number): Int32Array[] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (const i of scoreOrder(labels.length, seed)) {
    const c = labels[i];
    if (c < 0 || c >= numClasses) throw new Error(`training label ${c} outside 0..${numClasses - 1}`);
    if (byClass[c].length < perClass) byClass[c].push(i);
  }
  byClass.forEach((rows, c) => {
    if (rows.length < perClass) throw new Error(`a class-balanced sample of ${perClass} images per class: the training split holds only ${rows.length} of class ${c}`);
  });
  const sample = Int32Array.from(byClass.flat());
  const parts = Math.min(batches, sample.length);
  return Array.from({ length: parts }, (_, k) => sample.subarray(Math.floor(k * sample.length / parts), Math.floor((k + 1) * sample.length / parts)));
}

/** The training-image indices of each batch of `spec`. */
export function specBatches(train: StagedSplit, spec: BatchSpec, seed: number, numClasses: number): Int32Array[] {
  if ("perClass" in spec) return classBalancedBatches(train.y.dataSync() as Int32Array, numClasses, spec.perClass, spec.batches, seed);
  return scoreBatches(train.count, spec.batches, spec.batchSize, seed);
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
  return gradientsOver(model, train, names, scoreBatches(train.count, batches, batchSize, seed), mode);
}

/** `meanGradients` over the given batches of training-image indices. */
export function gradientsOver(model: Model, train: StagedSplit, names: string[], plan: readonly Int32Array[], mode: BatchSpec["mode"]): Map<string, Float32Array> {
  const vars = names.map((name) => model.params.get(name)!);
  const sums: tf.Tensor[] = vars.map((v) => tf.keep(tf.zerosLike(v)));
  for (const rows of plan) {
    tf.tidy(() => {
      const grads = batchLossGradients(model, train, rows, mode, vars);
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
  for (const rows of specBatches(train, spec, seed, model.numClasses)) {
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
export class InputRecorder<V> extends DelegatingOps<V> {
  constructor(inner: Ops<V>, private readonly onInput: (layer: string, x: V) => void) { super(inner); }

  override conv(name: string, x: V, o: ConvOptions): V { this.onInput(name, x); return this.inner.conv(name, x, o); }
  override dense(name: string, x: V, o: DenseOptions): V { this.onInput(name, x); return this.inner.dense(name, x, o); }
  override batchNorm(name: string, x: V, o?: BatchNormOptions): V { this.onInput(name, x); return this.inner.batchNorm(name, x, o); }
  override depthwiseConv(name: string, x: V, o: DepthwiseOptions): V { this.onInput(name, x); return this.inner.depthwiseConv(name, x, o); }
  override layerNorm(name: string, x: V): V { this.onInput(name, x); return this.inner.layerNorm(name, x); }
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

/**
 * Relative size of the finite-difference step: ε = HVP_STEP · min over tensors of ‖θₗ‖/‖gₗ‖, so that no tensor moves by
 * more than that fraction of its own norm (a global ‖θ‖/‖g‖ moved ResNet-20's first conv 8x more than the average and
 * its truncation error reached 40 %). Truncation (after Richardson, O(ε⁴)) grows and float32 rounding (∝ 1/ε) shrinks
 * with the step. Measured on random images at T = 200, estimates at 2e-3 agree with those at half the step to ~1e-4 of
 * the largest entry on LeNet-300-100 and LeNet-5, ~2e-3 on ResNet-20 and ~6e-3 on ResNet-56 (batch norm in train
 * mode; twice the step is worse there: 5e-2).
 */
export const HVP_STEP = 2e-3;

/**
 * g and Hg of the mean cross-entropy loss (logits / temperature) over `plan`'s batches, with respect to the tensors
 * `names` (see ScoreContext.hessianGradient).
 *
 * Hg is a central finite difference of gradients, Hg ≈ (∇L(θ + εg) − ∇L(θ − εg)) / 2ε, not a double backprop:
 * tfjs has no gradient for Conv2DBackpropFilter nor MaxPoolGrad, the fused training batch norm's gradient kernel
 * (src/backend/fused-ops.ts) has none either, and the native backend's kernels are not differentiable twice, so
 * tf.grad of a gradient fails on every convolutional network. A plain difference would be wrong on ReLU networks,
 * though: the loss's gradient jumps where a ReLU's input or a max-pool's winner changes sign or place, a step of ε
 * crosses some of those jumps, and each crossed one adds jump/2ε to the estimate. So the gradients at θ ± εg are
 * taken with every ReLU's on/off pattern and every max-pool's selected inputs frozen as they were at θ
 * (`FrozenActivations`): within that region the loss is smooth in θ and its Hessian is exactly the one autodiff
 * gives at θ (ReLU'' = 0, max pooling routes through its selection). ε is scaled to the norms (HVP_STEP) so the step
 * is a fixed small fraction of the weights whatever the gradient's scale (which the temperature, the loss and the
 * model all change by orders of magnitude), and two steps are combined (Richardson) to cancel the ε² error.
 */
export function hessianGradient(model: Model, train: StagedSplit, names: string[], plan: readonly Int32Array[], mode: BatchSpec["mode"], temperature: number, step = HVP_STEP): HessianGradient {
  if (!(temperature > 0)) throw new Error(`loss temperature must be > 0, got ${temperature}`);
  if (plan.length === 0) throw new Error("a Hessian-gradient product over no training batches");
  const theta = names.map((name) => {
    const v = model.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v as tf.Tensor;
  });
  const patterns = plan.map(() => new ActivationPattern());
  try {
    const gradient = tf.tidy(() => {
      const sums = plan.map((rows, b) => lossGradients(model, train, rows, mode, temperature, theta, names, patterns[b], "record"));
      return theta.map((_, i) => tf.keep(tf.div(tf.addN(sums.map((s) => s[i])), plan.length)));
    });
    const product = tf.tidy(() => {
      const norms = (ts: tf.Tensor[]) => ts.map((t) => Math.sqrt(tf.sum(tf.square(t)).dataSync()[0]));
      const gNorms = norms(gradient);
      if (gNorms.some((n) => !Number.isFinite(n))) return gradient.map((g) => tf.keep(tf.mul(g, NaN)));
      const gNorm = Math.hypot(...gNorms);
      if (gNorm === 0) return gradient.map((g) => tf.keep(tf.zerosLike(g)));
      const thetaNorms = norms(theta);
      const ratios = thetaNorms.flatMap((t, i) => (t > 0 && gNorms[i] > 0 ? [t / gNorms[i]] : []));
      const eps = step * (ratios.length > 0 ? Math.min(...ratios) : 1 / gNorm);
      // D(h) = (∇L(θ + hg) − ∇L(θ − hg)) / 2h = Hg + c·h² + O(h⁴); Richardson's (4·D(ε) − D(2ε)) / 3 cancels c·h².
      const central = (h: number) => {
        const plus = theta.map((t, i) => tf.add(t, tf.mul(gradient[i], h)));
        const minus = theta.map((t, i) => tf.sub(t, tf.mul(gradient[i], h)));
        const diffs = plan.map((rows, b) => {
          const gp = lossGradients(model, train, rows, mode, temperature, plus, names, patterns[b], "replay");
          const gm = lossGradients(model, train, rows, mode, temperature, minus, names, patterns[b], "replay");
          return gp.map((g, i) => tf.sub(g, gm[i]));
        });
        return theta.map((_, i) => tf.div(tf.addN(diffs.map((d) => d[i])), 2 * h * plan.length));
      };
      const near = central(eps);
      const far = central(2 * eps);
      return theta.map((_, i) => tf.keep(tf.div(tf.sub(tf.mul(near[i], 4), far[i]), 3)));
    });
    const read = (ts: tf.Tensor[]) => new Map(names.map((name, i) => [name, ts[i].dataSync() as Float32Array]));
    const out = { gradient: read(gradient), hessianGradient: read(product) };
    gradient.forEach((t) => t.dispose());
    product.forEach((t) => t.dispose());
    return out;
  } finally {
    patterns.forEach((p) => p.dispose());
  }
}

/**
 * ∂L/∂θ of one batch's mean loss, the tensors `names` taking the values `values` (the model's other parameters and
 * state as they are). "record" notes the batch's ReLU and max-pool pattern on the way; "replay" runs with it.
 */
function lossGradients(
  model: Model, train: StagedSplit, rows: Int32Array, mode: BatchSpec["mode"], temperature: number,
  values: tf.Tensor[], names: string[], pattern: ActivationPattern, how: "record" | "replay",
): tf.Tensor[] {
  const idx = tf.tensor1d(rows, "int32");
  const x = tf.gather(train.x, idx);
  const onehot = tf.oneHot(tf.gather(train.y, idx), model.numClasses);
  const loss = (...vs: tf.Tensor[]) => {
    const all = new Map<string, tf.Tensor>([...model.params, ...model.state]);
    names.forEach((name, i) => all.set(name, vs[i]));
    const inner = new TensorOps(all, mode === "train");
    const logits = model.arch.build(new FrozenActivations(inner, pattern, how), x, model.numClasses);
    // Running-statistic updates are dropped: scoring reads the model and changes nothing.
    for (const [, t] of inner.stateUpdates) t.dispose();
    return tf.losses.softmaxCrossEntropy(onehot, temperature === 1 ? logits : tf.div(logits, temperature)) as tf.Scalar;
  };
  return tf.grads(loss)(values);
}

/** The on/off state of every ReLU and the inputs every max pool selected, in the order the architecture runs them. */
class ActivationPattern {
  readonly relus: tf.Tensor[] = [];
  readonly pools: tf.Tensor[] = [];
  dispose(): void {
    for (const t of [...this.relus, ...this.pools]) t.dispose();
  }
}

/** Far below any activation: an input offset by it can never win a max pool. */
const NEVER_SELECTED = -1e30;

/**
 * Runs an architecture on tensor ops with its ReLUs and max pools recorded ("record": computed as usual, their
 * pattern kept) or frozen ("replay": a ReLU multiplies by the recorded on/off mask, a max pool takes the recorded
 * winner of each window). Replayed, the network is smooth in its parameters; its derivatives are those autodiff
 * gives at the recorded point.
 */
export class FrozenActivations extends DelegatingOps<tf.Tensor> {
  private relu_ = 0;
  private pool_ = 0;
  constructor(inner: Ops<tf.Tensor>, private readonly pattern: ActivationPattern, private readonly how: "record" | "replay") { super(inner); }

  // Every other operation passes through to inner: smooth or piecewise-linear in the parameters with no switch to
  // freeze (GELU, softmax attention and layer norm are smooth; batch norm, the average pools and the rest are linear).

  // A layer's own ReLU is recorded / frozen like any other: the layer runs without it, then this.relu.
  override conv(name: string, x: tf.Tensor, o: ConvOptions): tf.Tensor {
    const { activation, ...rest } = o;
    const y = this.inner.conv(name, x, rest);
    return activation === "relu" ? this.relu(y) : y;
  }
  override dense(name: string, x: tf.Tensor, o: DenseOptions): tf.Tensor {
    const { activation, ...rest } = o;
    const y = this.inner.dense(name, x, rest);
    return activation === "relu" ? this.relu(y) : y;
  }

  override relu(x: tf.Tensor): tf.Tensor {
    if (this.how === "record") {
      this.pattern.relus.push(tf.keep(tf.cast(tf.greater(x, 0), "float32")));
      return this.inner.relu(x);
    }
    const mask = this.pattern.relus[this.relu_++];
    if (!mask || !sameShape(mask, x)) throw new Error("replaying a ReLU pattern on a network that runs differently");
    return tf.mul(x, mask);
  }

  override maxPool(x: tf.Tensor, size: number, stride = size): tf.Tensor {
    // A winner per window is one input per window only when windows neither overlap nor leave gaps.
    if (stride !== size) throw new Error(`the Hessian-gradient product freezes max pools with stride = size only, got size ${size} stride ${stride}`);
    if (this.how === "record") {
      const y = this.inner.maxPool(x, size, stride);
      this.pattern.pools.push(tf.keep(tf.tidy(() => {
        // Each window's max spread back over the window: where an input equals it, the input won (ties among
        // winners are all marked; autodiff routes through one of them, and so does the replayed max pool).
        const [n, ho, wo, c] = y.shape;
        const spread = tf.reshape(tf.tile(tf.reshape(y, [n, ho, 1, wo, 1, c]), [1, 1, size, 1, size, 1]), [n, ho * size, wo * size, c]);
        const [h, w] = [x.shape[1]!, x.shape[2]!];
        const padded = tf.pad(spread, [[0, 0], [0, h - ho * size], [0, w - wo * size], [0, 0]], NaN);
        return tf.where(tf.equal(x, padded), tf.zerosLike(x), tf.fill(x.shape, NEVER_SELECTED));
      })));
      return y;
    }
    const offset = this.pattern.pools[this.pool_++];
    if (!offset || !sameShape(offset, x)) throw new Error("replaying a max-pool pattern on a network that runs differently");
    return this.inner.maxPool(tf.add(x, offset), size, stride);
  }
}

function sameShape(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}
