/**
 * The batch-by-batch gradient capability (ScoreContext.batchGradients): one batch's gradient at a time, read to the
 * host and handed on, so a statistic over many batches (a mean of squares) costs the memory of one gradient.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BatchSpec } from "../../methods/types.js";
import type { StagedSplit } from "../train/loop.js";
import { forward, type Model } from "../train/model.js";

/**
 * ∂L_b/∂θ for each batch b of `plan`, L_b the batch's mean cross-entropy, θ the tensors `names` (any trainable
 * tensor). In "train" mode batch norm normalises with the batch's statistics, as a training step does; the running
 * statistics are not updated, so the model is left as it was.
 */
export async function forEachBatchGradient(
  model: Model, train: StagedSplit, names: readonly string[], plan: readonly Int32Array[], mode: BatchSpec["mode"],
  visit: (gradients: ReadonlyMap<string, Float32Array>, batch: number) => void,
): Promise<void> {
  const vars = names.map((name) => {
    const v = model.params.get(name);
    if (!v) throw new Error(`batch gradients: ${name} is no trainable tensor of ${model.arch.name}`);
    return v;
  });
  for (let b = 0; b < plan.length; b++) {
    const out = new Map<string, Float32Array>();
    tf.tidy(() => {
      const grads = batchLossGradients(model, train, plan[b], mode, vars);
      vars.forEach((v, i) => out.set(names[i], (grads[v.name].dataSync() as Float32Array).slice()));
    });
    visit(out, b);
  }
}

/**
 * ∂L/∂v for each of `vars`, L the mean cross-entropy of the training images `rows`, keyed by variable name; call it
 * inside a tidy. The batch-norm running-statistic updates of the forward pass are dropped: scoring reads the model.
 */
export function batchLossGradients(
  model: Model, train: StagedSplit, rows: Int32Array, mode: BatchSpec["mode"], vars: tf.Variable[],
): tf.NamedTensorMap {
  const idx = tf.tensor1d(rows, "int32");
  const labels = tf.gather(train.y, idx);
  let dropped: Array<[string, tf.Tensor]> = [];
  const { grads } = tf.variableGrads(() => {
    const { logits, stateUpdates } = forward(model, tf.gather(train.x, idx), mode === "train");
    dropped = stateUpdates;
    return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, model.numClasses), logits) as tf.Scalar;
  }, vars);
  for (const [, t] of dropped) t.dispose();
  return grads;
}
