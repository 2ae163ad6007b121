// Fused training-mode batch norm for the "native" backend: one native kernel forward (y, batch mean,
// biased batch variance) and one backward (dx through the batch statistics, dscale, doffset), joined by
// tf.customGrad. Replaces tf.moments + tf.batchNorm (5 forward kernels, ~9 large backward passes).
// Imports only tfjs-core (and kernel names), so src/archs can use it without loading the backend.

import * as tf from "@tensorflow/tfjs-core";
import { NativeBatchNormTrain, NativeBatchNormTrainGrad } from "./kernels.js";

export interface BatchNormTrainResult {
  /** Normalized, scaled and shifted x (on the gradient tape as a function of x, scale and offset). */
  y: tf.Tensor;
  /** Batch mean per channel, [C]. Not tracked by any scope: the caller disposes it. */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel, [C]. Not tracked by any scope: the caller disposes it. */
  variance: tf.Tensor1D;
}

/**
 * Whether `batchNormTrain` can run these inputs: the active backend is "native" with the fused kernels
 * registered, float32 x of rank >= 2 with at least one element, scale and offset float32 of shape [C]
 * (C = x's last dimension).
 */
export function canBatchNormTrain(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor): boolean {
  if (tf.getBackend() !== "native" || tf.getKernel(NativeBatchNormTrain, "native") == null) return false;
  if (x.dtype !== "float32" || x.rank < 2 || x.size === 0) return false;
  const C = x.shape[x.rank - 1];
  const fits = (t: tf.Tensor) => t.dtype === "float32" && t.rank === 1 && t.shape[0] === C;
  return fits(scale) && fits(offset);
}

/**
 * Training batch norm over every axis but the last: y = (x - mean) / sqrt(variance + eps) * scale + offset
 * with the batch statistics, differentiable in x (through the statistics), scale and offset. Check
 * `canBatchNormTrain` first.
 */
export function batchNormTrain(x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, eps: number): BatchNormTrainResult {
  let stats: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const attrs = { varianceEpsilon: eps } as unknown as tf.NamedAttrMap;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xx, sc, off] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, variance] = tf.engine().runKernel(NativeBatchNormTrain, { x: xx, scale: sc, offset: off }, attrs) as tf.Tensor[];
    // The statistics leave the op beside its value: keep them from the op's tidy; the caller disposes them.
    stats = [tf.keep(mean) as tf.Tensor1D, tf.keep(variance) as tf.Tensor1D];
    save([xx, sc, mean, variance]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, ssc, smean, svar] = saved;
        return tf.engine().runKernel(NativeBatchNormTrainGrad, { dy, x: sx, mean: smean, variance: svar, scale: ssc }, attrs) as tf.Tensor[];
      },
    };
  });
  const y = op(x, scale, offset);
  if (!stats) throw new Error("batchNormTrain: the native kernel returned no statistics");
  return { y, mean: stats[0], variance: stats[1] };
}
