/**
 * Fused training operations as tfjs kernels, so that train/ and archs/ reach a backend's fast path through the
 * kernel registry instead of importing the backend: one call, whatever backend is active.
 *
 * Every backend but "native" gets the implementation below, composed of standard tfjs ops: the very ops (and
 * order) training ran before these kernels existed, so results on those backends did not change by a bit. The
 * native backend registers its own implementations (src/backend/native/kernels.ts), which fall back to these
 * when an input does not fit them.
 *
 * This module imports tfjs only: importing it must not load the native addon.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * One SGD step (PyTorch-style momentum, L2 decay added to the gradient) with the pruning mask folded in.
 * Inputs w, g, v (velocity; only when momentum > 0), mask (optional). Attrs lr, momentum, weightDecay.
 * Outputs the new w and, with v, the new v. An implementation may write the new values into w's and v's own
 * data and return those (see `sgdUpdate`).
 */
export const SgdUpdate = "PrunebenchSgdUpdate";
/**
 * The same step with Nesterov momentum (PyTorch's SGD(nesterov=True)): v = momentum·v + d, then w -= lr·(d + momentum·v).
 * Same inputs, attrs and outputs as `SgdUpdate`. The native backend runs it as one pass (the addon's
 * sgdNesterovUpdate: the composed implementation's float32 operations in the same order, no FMA contraction, so the
 * same bits; the composed tf ops cost 8 passes over every parameter, ~10 % of a LeNet-5-Caffe step); every other
 * backend runs the composed implementation below.
 */
export const SgdNesterovUpdate = "PrunebenchSgdNesterovUpdate";
/**
 * One Adam step (L2 decay added to the gradient, not AdamW) with the mask folded in. Inputs w, g, m, v, mask
 * (optional). Attrs lr (already multiplied by the bias correction), beta1, beta2, epsilon, weightDecay.
 * Outputs the new w, m and v, possibly written in place like `SgdUpdate`.
 */
export const AdamUpdate = "PrunebenchAdamUpdate";
/**
 * Training-mode batch norm over every axis but the last. Inputs x, scale, offset; attr varianceEpsilon.
 * Outputs y, the batch mean and the biased batch variance. Differentiable in x (through the statistics),
 * scale and offset, from y only: the statistics feed running averages, never the loss.
 */
export const BatchNormTrain = "PrunebenchBatchNormTrain";
/** Its gradient: inputs dy, x, mean, variance, scale; attr varianceEpsilon. Outputs dx, dscale, doffset. */
export const BatchNormTrainGrad = "PrunebenchBatchNormTrainGrad";

/**
 * The training loss and the batch's top-1 hits in one kernel. Inputs logits [B, C] (float32) and labels [B] (int32).
 * Outputs the mean softmax cross-entropy over the batch (tf.losses.softmaxCrossEntropy of the one-hot labels: a
 * scalar) and how many rows' first maximal logit is the label (float32 scalar: sum(cast(equal(argMax(logits), labels)))).
 * Differentiable in logits through the loss only. The composed implementation is those tfjs ops (~25 kernels for a
 * 10-class batch, a tenth of an MLP step on the native backend in dispatch alone); the native backend's runs one pass.
 */
export const SoftmaxCrossEntropy = "PrunebenchSoftmaxCrossEntropy";
/** Its gradient: inputs dy (the loss's, a scalar), logits, labels. Output dlogits = dy / B · (softmax(logits) − onehot). */
export const SoftmaxCrossEntropyGrad = "PrunebenchSoftmaxCrossEntropyGrad";

export interface SgdAttrs { lr: number; momentum: number; weightDecay: number; nesterov?: boolean }
export interface AdamAttrs { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number }

type Args = Parameters<tf.KernelFunc>[0];
type Out = tf.TensorInfo | tf.TensorInfo[];

/** Backends that get the composed implementations; "native" registers its own. */
export const COMPOSED_BACKENDS = ["cpu", "wasm", "tensorflow", "webgl"] as const;

/**
 * The inputs of kernels these wrappers run are the callers' Tensors (runKernel passes them through), so the
 * composed implementations can run tfjs ops on them; ops inside a kernel are not taped.
 */
function tensors(args: Args): Record<string, tf.Tensor | undefined> {
  return args.inputs as unknown as Record<string, tf.Tensor | undefined>;
}

/** Masks the gradient and adds L2 decay, as both optimizers do first. */
function decayed(w: tf.Tensor, g: tf.Tensor, mask: tf.Tensor | undefined, weightDecay: number): tf.Tensor {
  let d = mask ? tf.mul(g, mask) : g;
  if (weightDecay > 0) d = tf.add(d, tf.mul(w, weightDecay));
  return d;
}

export function composedSgdUpdate(args: Args): Out {
  return sgdOps(args, false);
}

export function composedSgdNesterovUpdate(args: Args): Out {
  return sgdOps(args, true);
}

/** Without Nesterov: the ops (and order) of the SGD step from before the fused kernels, so results keep every bit. */
function sgdOps(args: Args, nesterov: boolean): Out {
  const { w, g, v, mask } = tensors(args);
  const { lr, momentum, weightDecay } = args.attrs as unknown as SgdAttrs;
  return tf.tidy(() => {
    let d = decayed(w!, g!, mask, weightDecay);
    const out: tf.Tensor[] = [];
    if (v) {
      const v2 = tf.add(tf.mul(v, momentum), d);
      out.push(v2);
      d = nesterov ? tf.add(d, tf.mul(v2, momentum)) : v2;
    }
    const next = tf.sub(w!, tf.mul(d, lr));
    return [mask ? tf.mul(next, mask) : next, ...out];
  });
}

export function composedAdamUpdate(args: Args): Out {
  const { w, g, m, v, mask } = tensors(args);
  const { lr, beta1, beta2, epsilon, weightDecay } = args.attrs as unknown as AdamAttrs;
  return tf.tidy(() => {
    const d = decayed(w!, g!, mask, weightDecay);
    const m2 = tf.add(tf.mul(m!, beta1), tf.mul(d, 1 - beta1));
    const v2 = tf.add(tf.mul(v!, beta2), tf.mul(tf.square(d), 1 - beta2));
    const next = tf.sub(w!, tf.div(tf.mul(m2, lr), tf.add(tf.sqrt(v2), epsilon)));
    return [mask ? tf.mul(next, mask) : next, m2, v2];
  });
}

const reducedAxes = (x: tf.Tensor) => x.shape.map((_, i) => i).slice(0, -1);

export function composedBatchNormTrain(args: Args): Out {
  const { x, scale, offset } = tensors(args);
  const eps = (args.attrs as unknown as tf.FusedBatchNormAttrs).varianceEpsilon;
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x!, reducedAxes(x!));
    return [tf.batchNorm(x!, mean, variance, offset, scale, eps), mean, variance];
  });
}

/**
 * The gradient autodiff takes through tf.moments + tf.batchNorm, replayed node by node in the tape's reverse
 * order with the registered gradient functions and accumulated in the same order: bit-identical to what those
 * ops gave when taped directly. Tape (forward): Mean(x) → Cast(x) → Reshape(mean) → Sub → Square →
 * Mean(variance) → [Reshape(x) to 4-d] → FusedBatchNorm → Reshape(y).
 */
export function composedBatchNormTrainGrad(args: Args): Out {
  const { dy, x, mean, variance, scale } = tensors(args);
  const attrs = args.attrs as unknown as tf.NamedAttrMap;
  const grad = (kernel: string, dys: tf.Tensor, saved: tf.Tensor[], a: tf.NamedAttrMap = {}) => {
    const g = tf.getGradient(kernel);
    if (!g) throw new Error(`${BatchNormTrainGrad}: no gradient registered for ${kernel}`);
    return g.gradFunc(dys, saved, a);
  };
  return tf.tidy(() => {
    const axes = reducedAxes(x!);
    const meanAttrs = { axis: axes, keepDims: false } as unknown as tf.NamedAttrMap;
    const keepShape = x!.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const meanKeep = tf.reshape(mean!, keepShape);
    const diff = tf.sub(x!, meanKeep);
    const x4 = x!.rank >= 4 ? x! : tf.reshape(x!, [1, 1, 1, ...x!.shape].slice(-4));
    const dy4 = grad(tf.Reshape, dy!, [x4]).x();
    const bn = grad(tf.FusedBatchNorm, dy4, [x4, mean!, variance!, scale!], attrs);
    let dx = bn.x();
    if (x4 !== x) dx = grad(tf.Reshape, dx, [x!]).x();
    const dDevSq = grad(tf.Mean, bn.variance(), [diff], meanAttrs).x();
    const sub = grad(tf.Sub, grad(tf.Square, dDevSq, [diff]).x(), [x!, meanKeep]);
    const dMean = tf.add(bn.mean(), grad(tf.Reshape, sub.b(), [mean!]).x());
    dx = tf.add(dx, grad(tf.Cast, sub.a(), [x!]).x());
    dx = tf.add(dx, grad(tf.Mean, dMean, [x!], meanAttrs).x());
    return [dx, bn.scale(), bn.offset()];
  });
}

export function composedSoftmaxCrossEntropy(args: Args): Out {
  const { logits, labels } = tensors(args);
  return tf.tidy(() => {
    const onehot = tf.oneHot(labels!, logits!.shape[1]!);
    const loss = tf.losses.softmaxCrossEntropy(onehot, logits!);
    return [loss, tf.sum(tf.cast(tf.equal(tf.argMax(logits!, 1), labels!), "float32"))];
  });
}

/** The gradient autodiff takes through those ops (softmaxCrossEntropy's custom gradient under the mean's), op for op. */
export function composedSoftmaxCrossEntropyGrad(args: Args): Out {
  const { dy, logits, labels } = tensors(args);
  return tf.tidy(() => {
    const [B, C] = logits!.shape as [number, number];
    const perRow = tf.mul(tf.reshape(tf.div(dy!, B), [1, 1]), tf.ones([B, 1]));
    const logResult = tf.sub(logits!, tf.logSumExp(logits!, 1, true));
    return tf.mul(perRow, tf.sub(tf.exp(logResult), tf.oneHot(labels!, C)));
  });
}

const composed: Record<string, (args: Args) => Out> = {
  [SoftmaxCrossEntropy]: composedSoftmaxCrossEntropy,
  [SoftmaxCrossEntropyGrad]: composedSoftmaxCrossEntropyGrad,
  [SgdUpdate]: composedSgdUpdate,
  [SgdNesterovUpdate]: composedSgdNesterovUpdate,
  [AdamUpdate]: composedAdamUpdate,
  [BatchNormTrain]: composedBatchNormTrain,
  [BatchNormTrainGrad]: composedBatchNormTrainGrad,
};

/** Registers the composed kernels for `backendName` where it has none of that name yet. Idempotent. */
export function registerComposedKernels(backendName: string): void {
  for (const [kernelName, fn] of Object.entries(composed)) {
    if (tf.getKernel(kernelName, backendName) == null) {
      tf.registerKernel({ kernelName, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
    }
  }
}

for (const b of COMPOSED_BACKENDS) registerComposedKernels(b);

if (tf.getGradient(BatchNormTrain) == null) {
  tf.registerGradient({
    kernelName: BatchNormTrain,
    inputsToSave: ["x", "scale"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, scale, mean, variance] = saved;
      const [dx, dscale, doffset] = tf.engine().runKernel(BatchNormTrainGrad, { dy, x, mean, variance, scale }, attrs) as tf.Tensor[];
      return { x: () => dx, scale: () => dscale, offset: () => doffset };
    },
  });
}

if (tf.getGradient(SoftmaxCrossEntropy) == null) {
  tf.registerGradient({
    kernelName: SoftmaxCrossEntropy,
    inputsToSave: ["logits", "labels"],
    gradFunc: (dys, saved) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [logits, labels] = saved;
      return { logits: () => tf.engine().runKernel(SoftmaxCrossEntropyGrad, { dy, logits, labels }) as tf.Tensor };
    },
  });
}

/**
 * The mean softmax cross-entropy of `logits` [B, C] against int32 `labels` [B] (on the gradient tape through the
 * logits) and the batch's top-1 hits (a float32 scalar, not differentiable), from one kernel.
 */
export function softmaxCrossEntropyWithHits(logits: tf.Tensor2D, labels: tf.Tensor1D): { loss: tf.Scalar; hits: tf.Scalar } {
  const [loss, hits] = tf.engine().runKernel(SoftmaxCrossEntropy, { logits, labels }) as tf.Tensor[];
  return { loss: loss as tf.Scalar, hits: hits as tf.Scalar };
}

/** Gives `v` the values of `t` (a kernel's output, possibly `v`'s own data written in place) and drops `t`. */
function install(v: tf.Variable, t: tf.Tensor): void {
  if (t.dataId !== v.dataId) v.assign(t);
  t.dispose();
}

/**
 * Updates `w` (and `velocity`, given when momentum > 0) by one masked SGD step: with `mask`, pruned weights are
 * exactly 0 afterwards and their velocity stays 0. Tensors that share data with `w` keep their values. With
 * `nesterov`, the step runs the Nesterov kernel (tfjs ops on every backend; see `SgdNesterovUpdate`).
 */
export function sgdUpdate(w: tf.Variable, g: tf.Tensor, velocity: tf.Variable | null, mask: tf.Tensor | undefined, attrs: SgdAttrs): void {
  const inputs: tf.NamedTensorMap = { w, g };
  if (velocity) inputs.v = velocity;
  if (mask) inputs.mask = mask;
  const { nesterov, ...plain } = attrs;
  const kernel = nesterov ? SgdNesterovUpdate : SgdUpdate;
  const [w2, v2] = tf.engine().runKernel(kernel, inputs, plain as unknown as tf.NamedAttrMap) as tf.Tensor[];
  install(w, w2);
  if (velocity) install(velocity, v2);
}

/** Updates `w`, `m` and `v` by one masked Adam step (see `sgdUpdate`). */
export function adamUpdate(w: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, mask: tf.Tensor | undefined, attrs: AdamAttrs): void {
  const inputs: tf.NamedTensorMap = { w, g, m, v };
  if (mask) inputs.mask = mask;
  const [w2, m2, v2] = tf.engine().runKernel(AdamUpdate, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  install(w, w2);
  install(m, m2);
  install(v, v2);
}

export interface BatchNormTrainResult {
  /** Normalized, scaled and shifted x, on the gradient tape as a function of x, scale and offset. */
  y: tf.Tensor;
  /** Batch mean per channel, [C]. */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel, [C]. */
  variance: tf.Tensor1D;
}

/** Training batch norm with the batch statistics: y = (x - mean) / sqrt(variance + eps) * scale + offset. */
export function batchNormTrain(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, eps: number): BatchNormTrainResult {
  const [y, mean, variance] = tf.engine().runKernel(BatchNormTrain, { x, scale, offset },
    { varianceEpsilon: eps } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
