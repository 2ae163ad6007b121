/**
 * A whole SGD training step of a plain dense stack (flatten, then dense layers with bias, ReLU between them, the last
 * one linear) as one kernel: batch gather, forward, softmax cross-entropy and its hits, backward, and the masked SGD
 * update of every tensor, each layer on the dense or the sparse kernels as the taped step would run it. On LeNet-300-100 the taped step ran ~35 kernels through the tfjs engine (dispatch, tape
 * entries, gradient thunks, tensor bookkeeping and fresh output arrays: ~0.4 ms of a ~2.3 ms step, the rest sgemm);
 * this kernel makes the same native calls, in the same order on the same arrays, with none of that around them, so
 * the weights it leaves are the taped step's to the bit (test/dense-step.test.ts).
 *
 * Only a backend that registers the kernel runs it (the native backend does); src/train/fused-step.ts decides per
 * step whether the taped path's extra work (hooks, penalties, gates, soft masks, augmentation …) is needed, and
 * otherwise calls `denseStackSgdStep`. There is no composed implementation: elsewhere the taped path runs.
 *
 * This module imports tfjs only: importing it must not load the native addon.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Inputs: x (the staged split's images, float32, [count, ...]), y (its labels, int32 [count]), lossSum and hitsSum (the
 * epoch's running sums, float32 scalars); per layer i, in order, `k${i}` [in, out] and `b${i}` [out], with momentum
 * `vk${i}`/`vb${i}` (velocities), with a mask `mk${i}`/`mb${i}`, and `p${i}` (int32) where the layer runs on the sparse
 * kernels with that packed pattern of its mask (src/backend/sparse-ops.ts); zerosSum (float32 scalar) when the step
 * counts dead units. Attrs: `DenseStepAttrs`. Outputs: the new sums, lossSum + batch size · the batch's mean loss and
 * hitsSum + its top-1 hits (the float32 operations the training loop's tf.mul and tf.add make), with zerosSum: zerosSum +
 * the zeros of every ReLU output (counted and added as TensorOps' CountZeros and tf.addN do), then for each layer the
 * new kernel and bias, then (with momentum) each layer's new velocities: possibly the inputs' own data written in place
 * (see `denseStackSgdStep`). A backend may instead install every new value under its tensor's own data and return the
 * sums alone.
 */
export const DenseStackSgdStep = "PrunebenchDenseStackSgdStep";

export type DenseStepInput = "k" | "b" | "vk" | "vb" | "mk" | "mb" | "p";
const NAMES: Record<DenseStepInput, string[]> = { k: [], b: [], vk: [], vb: [], mk: [], mb: [], p: [] };

/** Layer `i`'s input name of that kind, made once: a fresh string per step costs V8 a string-table lookup per access. */
export function inputName(kind: DenseStepInput, i: number): string {
  return (NAMES[kind][i] ??= `${kind}${i}`);
}

export interface DenseStepAttrs {
  /** The batch's rows of x and y. */
  rows: Int32Array;
  /** Per layer: 1 where a ReLU follows it. */
  relu: number[];
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

/** One layer's tensors as the step reads and updates them. */
export interface DenseStepLayer {
  kernel: tf.Variable;
  bias: tf.Variable;
  /** Velocities (both, or neither: without momentum). */
  vKernel: tf.Variable | null;
  vBias: tf.Variable | null;
  maskKernel?: tf.Tensor;
  maskBias?: tf.Tensor;
  /** The kernel mask's packed pattern where the layer runs on the sparse kernels. */
  pattern?: tf.Tensor;
}

/** Whether the active backend has the one-kernel step. */
export function denseStepAvailable(): boolean {
  return tf.getKernel(DenseStackSgdStep, tf.getBackend()) != null;
}

/** Gives `v` the values of `t` (the kernel's output, possibly `v`'s own data written in place) and drops `t`. */
function install(v: tf.Variable, t: tf.Tensor): void {
  if (t.dataId !== v.dataId) v.assign(t);
  t.dispose();
}

/**
 * One training step on `rows` of (x, y): every layer's tensors updated in place, as `sgdUpdate` updates each, and the
 * running sums of the loss (weighted by the batch size), the top-1 hits and (when given) the ReLU outputs' zeros returned
 * with this batch's added, as new scalars on the device (the old ones are the caller's to drop).
 */
export function denseStackSgdStep(
  x: tf.Tensor, y: tf.Tensor, sums: { loss: tf.Tensor; hits: tf.Tensor; zeros?: tf.Tensor }, layers: readonly DenseStepLayer[], attrs: DenseStepAttrs,
): { loss: tf.Scalar; hits: tf.Scalar; zeros?: tf.Scalar } {
  const inputs: tf.NamedTensorMap = { x, y, lossSum: sums.loss, hitsSum: sums.hits };
  if (sums.zeros) inputs.zerosSum = sums.zeros;
  layers.forEach((l, i) => {
    inputs[inputName("k", i)] = l.kernel;
    inputs[inputName("b", i)] = l.bias;
    if (l.vKernel && l.vBias) {
      inputs[inputName("vk", i)] = l.vKernel;
      inputs[inputName("vb", i)] = l.vBias;
    }
    if (l.maskKernel) inputs[inputName("mk", i)] = l.maskKernel;
    if (l.maskBias) inputs[inputName("mb", i)] = l.maskBias;
    if (l.pattern) inputs[inputName("p", i)] = l.pattern;
  });
  const outs = tf.engine().runKernel(DenseStackSgdStep, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  let j = sums.zeros ? 3 : 2;
  // More than the sums: the new values of the tensors to install (see DenseStackSgdStep).
  const separate = outs.length > j;
  if (separate) for (const l of layers) {
    install(l.kernel, outs[j++]);
    install(l.bias, outs[j++]);
  }
  if (separate) for (const l of layers) {
    if (!l.vKernel || !l.vBias) continue;
    install(l.vKernel, outs[j++]);
    install(l.vBias, outs[j++]);
  }
  return { loss: outs[0] as tf.Scalar, hits: outs[1] as tf.Scalar, ...(sums.zeros ? { zeros: outs[2] as tf.Scalar } : {}) };
}
